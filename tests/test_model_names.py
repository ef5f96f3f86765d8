"""Every object the admin names (titles, breadcrumbs, links, select boxes, messages) reads as
words in the page's language: no "VoucherImport object (1)", no bare ids, no raw keys."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import translation
from factory.django import DjangoModelFactory

from tests import factories

pytestmark = pytest.mark.django_db

# campaigns and audit: their models were being written while this test was; add them here
# once tests/factories.py has a factory for each of their models.
PROJECT_APPS = ["members", "loyalty", "outbox", "partner_api", "webhooks", "segmentation"]
PROJECT_APPS += ["rewards", "audit", "campaigns"]

# 14:05 in Amsterdam on 3 January 2026 (13:05 UTC).
MOMENT = dt.datetime(2026, 1, 3, 13, 5, tzinfo=dt.UTC)


def _factories() -> dict:
    found = {}
    for value in vars(factories).values():
        if not (isinstance(value, type) and issubclass(value, DjangoModelFactory)):
            continue
        model = value._meta.model
        if isinstance(model, str):
            model = apps.get_model(model)
        if model is not None and model not in found and value is not factories.StaffUserFactory:
            found[model] = value
    return found


def _project_models() -> list:
    return [
        model
        for label in PROJECT_APPS
        for model in apps.get_app_config(label).get_models()
        if not model._meta.auto_created
    ]


def test_every_project_model_has_a_factory():
    missing = [model.__name__ for model in _project_models() if model not in _factories()]

    assert missing == []


@pytest.mark.parametrize("language", ["nl", "en"])
def test_no_model_is_named_by_django_default_or_by_its_id(language):
    by_model = _factories()
    for model in _project_models():
        obj = by_model[model].create()
        obj = model._default_manager.get(pk=obj.pk)  # as the admin loads it

        with translation.override(language):
            name = str(obj)

        assert "object (" not in name, model.__name__
        assert name.strip(), model.__name__
        assert not re.fullmatch(r"[\d\s:#→>-]*", name), f"{model.__name__}: {name!r}"
        assert name != str(obj.pk), model.__name__
        assert "None" not in name, f"{model.__name__}: {name!r}"


def test_a_purchase_is_named_by_its_partner_id_and_partner():
    purchase = factories.PurchaseFactory(
        external_id="D000009259", partner=factories.PartnerFactory(name="Schoenenwinkel")
    )

    with translation.override("en"):
        assert str(purchase) == "Purchase D000009259 (Schoenenwinkel)"


def test_a_withdrawn_consent_says_what_and_when_in_local_time():
    late_evening = dt.datetime(2026, 1, 3, 23, 30, tzinfo=dt.UTC)  # 4 Jan in Amsterdam
    record = factories.ConsentRecordFactory(granted=False, recorded_at=late_evening)

    with translation.override("en"):
        assert str(record) == "E-mail: withdrawn on 4 January 2026"
    with translation.override("nl"):
        assert str(record).endswith(" 4 januari 2026")


def test_a_purchase_line_shows_category_quantity_and_money_in_the_page_language():
    line = factories.PurchaseLineFactory(
        category="schoenen", quantity=Decimal("2.000"), amount=Decimal("1060.18")
    )

    with translation.override("en"):
        assert str(line) == "schoenen, quantity 2, €1,060.18"
    with translation.override("nl"):
        assert str(line).endswith(" 2, €\u00a01.060,18")


def test_a_ledger_entry_shows_kind_signed_points_and_day():
    entry = factories.LedgerEntryFactory(
        kind="redeem", points=-1500, balance_after=0, created_at=MOMENT
    )

    with translation.override("en"):
        assert str(entry) == "Redeemed: -1,500 points on 3 January 2026"


def test_a_segmentation_run_is_named_in_the_program_time_zone():
    run = factories.SegmentationRunFactory(started_at=MOMENT)

    with translation.override("en"):
        assert str(run) == "Run of 3 January 2026 14:05 (Done)"


def test_an_import_names_what_it_imports():
    reward = factories.RewardFactory(name_en="Cinema ticket")
    job = factories.VoucherImportFactory(reward=reward, created_at=MOMENT)

    with translation.override("en"):
        assert str(job) == "Code import for Cinema ticket of 3 January 2026 14:05 (Queued)"


def test_a_tier_change_names_member_and_tiers():
    member = factories.MemberFactory(first_name="Anna", last_name="de Vries")
    account = factories.PointsAccountFactory(member=member)
    gold = factories.TierFactory(name="Goud")
    change = factories.TierChangeFactory(account=account, to_tier=gold, changed_at=MOMENT)

    with translation.override("en"):
        assert (
            str(change)
            == f"Anna de Vries ({member.member_number}): no tier → Goud on 3 January 2026"
        )


def test_every_field_the_admin_shows_has_a_translatable_label():
    """An untranslated label shows the field's name in English on Dutch pages (and in Dutch
    filter headings: "Op to tier")."""
    from django.contrib import admin
    from django.utils.functional import Promise
    from rest_framework_api_key.models import AbstractAPIKey

    library_fields = {field.name for field in AbstractAPIKey._meta.fields}  # not ours to label
    raw = [
        f"{model.__name__}.{field.name}"
        for model in admin.site._registry
        if model._meta.app_label in PROJECT_APPS
        for field in model._meta.get_fields()
        if field.concrete
        and not field.primary_key
        and field.name not in {"r_score", "f_score", "m_score"}  # "R", "F", "M" in any language
        and not (issubclass(model, AbstractAPIKey) and field.name in library_fields)
        and not isinstance(field.verbose_name, Promise)
    ]

    assert raw == []
