"""A change page offers Save only when something on it can be changed; otherwise "Close"."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from factory.django import DjangoModelFactory

from loyalty.models import Tier, TierChange
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


def _one_of_each_admin_model() -> list:
    model_factories = [
        value
        for value in vars(factories).values()
        if isinstance(value, type) and issubclass(value, DjangoModelFactory)
    ]
    objects = []
    for model in admin.site._registry:
        for factory_class in model_factories:
            if factory_class._meta.get_model_class() is model:
                fields = {"to_tier": Tier.objects.last()} if model is TierChange else {}
                objects.append(factory_class.create(**fields))
                break
    return objects


def _change_page(client, obj):
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    response = client.get(url)
    assert response.status_code == 200, url
    return response


def test_no_change_page_offers_save_when_nothing_on_it_can_change(admin_client):
    offered_save, read_only = [], []
    for obj in _one_of_each_admin_model():
        response = _change_page(admin_client, obj)
        context = response.context
        editable = (
            bool(context["adminform"].form.fields) or context["has_editable_inline_admin_formsets"]
        )
        html = response.content.decode()
        if not editable:
            read_only.append(type(obj).__name__)
            if 'name="_save"' in html or 'name="_continue"' in html or "closelink" not in html:
                offered_save.append(type(obj).__name__)
        else:
            assert 'name="_save"' in html, type(obj).__name__

    assert offered_save == []
    # The pages this is about: read-only for staff, yet with the change permission kept.
    assert {"Purchase", "Redemption", "LedgerEntry"} <= set(read_only)


def test_a_purchase_page_closes_instead_of_saving(admin_client):
    purchase = factories.PurchaseFactory()

    html = _change_page(admin_client, purchase).content.decode()

    assert 'name="_save"' not in html
    assert 'class="closelink">Close</a>' in html
    assert reverse("admin:loyalty_purchase_refund", args=[purchase.pk]) in html


def test_a_finished_import_closes_and_a_new_one_can_be_saved(admin_client):
    job = factories.VoucherImportFactory(status="done")

    assert 'name="_save"' not in _change_page(admin_client, job).content.decode()
    add = admin_client.get(reverse("admin:rewards_voucherimport_add")).content.decode()
    assert 'name="_save"' in add


def test_an_editable_page_keeps_its_save_buttons(admin_client):
    member = factories.MemberFactory()

    html = _change_page(admin_client, member).content.decode()

    assert 'name="_save"' in html
    assert 'name="_continue"' in html


def test_a_page_with_nothing_to_edit_is_titled_view_and_an_editable_one_change(admin_client):
    purchase_html = _change_page(admin_client, factories.PurchaseFactory()).content.decode()
    member_html = _change_page(admin_client, factories.MemberFactory()).content.decode()

    assert "<h1>View purchase</h1>" in purchase_html
    assert "| View purchase |" in purchase_html.split("</title>")[0]
    assert "<h1>Change member</h1>" in member_html


def test_the_view_title_is_dutch_for_a_dutch_reader(admin_client, settings):
    settings.LANGUAGE_CODE = "nl"

    html = _change_page(admin_client, factories.PurchaseFactory()).content.decode()

    assert "<h1>aankoop bekijken</h1>" in html
