"""One language per page: euro amounts and counts in the page's number format, the points name
in the page's language, and ledger reasons in the reader's language whatever the member's
language was when the entry was written."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from loyalty import reasons
from loyalty.models import LedgerEntry, Purchase
from loyalty.services import (
    points_adjust,
    points_credit,
    points_debit,
    points_expire,
    purchase_record,
    purchase_refund,
)
from rewards import services as reward_services
from tests.api.conftest import client_for
from tests.conftest import message_text
from tests.factories import MemberWithLoginFactory, PartnerFactory, RewardFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def render(source: str, language: str, **context) -> str:
    with translation.override(language):
        return Template("{% load loyalty_format %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nl", "€\u00a014.090,15 · 2.936 · €\u00a0-5,00 · €1.234.568"),
        ("en", "€14,090.15 · 2,936 · -€5.00 · €1,234,568"),
    ],
)
def test_money_and_points_use_the_pages_separators(language, expected):
    shown = render(
        "{{ a|money }} · {{ n|points }} · {{ minus|money }} · {{ big|money:0 }}",
        language,
        a=Decimal("14090.15"),
        n=2936,
        minus=-5,
        big=Decimal("1234567.5"),
    )

    assert shown == expected.replace("€1.234.568", "€\u00a01.234.568")


def test_amounts_round_half_up_and_nothing_shows_as_empty_for_a_default():
    assert render("{{ a|money }}|{{ p|points }}", "en", a=Decimal("0.005"), p=Decimal("2.5")) == (
        "€0.01|3"
    )
    assert render('{{ none|money|default:"—" }}|{{ word|points }}', "nl", none=None, word="x") == (
        "—|"
    )


def test_the_points_name_follows_the_language(program):
    program.points_name, program.points_name_en = "punten", "points"
    program.save()

    with translation.override("nl"):
        assert program.points_label == "punten"
    with translation.override("en"):
        assert program.points_label == "points"


# --- pages and e-mails ----------------------------------------------------------------------


@pytest.fixture
def kpi_figures(program):
    """One active member who spent € 14,090.15 and redeemed 2,936 points."""
    program.target_spend_per_member = Decimal("300.00")
    program.save()
    member = MemberWithLoginFactory(language="nl")
    purchase_record(partner=PartnerFactory(), external_id="K1", member=member, amount="14090.15")
    points_debit(member=member, points=2936, reason="Cadeaubon")
    return member


@pytest.mark.parametrize(
    ("language", "spend", "redeemed", "target"),
    [
        ("nl", "€\u00a014.090,15", "2.936", "€\u00a0300,00"),
        ("en", "€14,090.15", "2,936", "€300.00"),
    ],
)
def test_the_kpi_page_shows_amounts_and_counts_in_the_pages_format(
    admin_client, kpi_figures, language, spend, redeemed, target
):
    response = admin_client.get(reverse("admin:kpis"), HTTP_ACCEPT_LANGUAGE=language)

    cards = response.content.decode().split('class="kpi-grid"')[1].split('class="chart-grid"')[0]
    assert spend in cards and redeemed in cards and target in cards
    assert "14,090,15" not in cards and "2936" not in cards


@pytest.mark.parametrize(
    ("language", "balance", "points_name", "missing"),
    [("nl", "2.936", "punten", "1.740"), ("en", "2,936", "points", "1,740")],
)
def test_the_portal_shows_balance_and_what_is_missing_in_the_members_language(
    client, program, language, balance, points_name, missing
):
    member = MemberWithLoginFactory(language=language)
    points_credit(member=member, points=2936, reason="Welkom")
    RewardFactory(points_cost=2936 + 1740, name_nl="Fiets", name_en="Bicycle")
    client.login(username=member.email, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language

    dashboard = client.get(reverse("points:dashboard")).content.decode()
    catalogue = client.get(reverse("rewards:catalogue")).content.decode()

    assert f"{balance} <span>{points_name}</span>" in dashboard
    assert f"You need {missing} more" in catalogue or f"Je hebt nog {missing} punten" in catalogue
    assert "1740" not in catalogue


@pytest.mark.parametrize(
    ("language", "exchanged"), [("nl", "2.936 punten"), ("en", "2,936 points")]
)
def test_the_redemption_email_counts_points_in_the_members_language(
    program, smtp_sink, django_capture_on_commit_callbacks, language, exchanged
):
    member = MemberWithLoginFactory(language=language)
    points_credit(member=member, points=3000, reason="Welkom")
    reward = RewardFactory(kind="product", points_cost=2936, name_nl="Fiets", name_en="Bicycle")

    with django_capture_on_commit_callbacks(execute=True):
        reward_services.reward_redeem(member=member, reward=reward)

    [message] = smtp_sink.wait_for(1)
    assert exchanged in message_text(message)
    html = message.get_body(preferencelist=("html",)).get_content()
    assert exchanged in html


# --- ledger reasons in the reader's language ------------------------------------------------

DUTCH = {
    "earn": "Aankoop P-1",
    "reversal": "Terugbetaling van aankoop P-1",
    "redeem": "Beloning: Taart",
    "cancel": "Geannuleerde beloning: Taart",
    "expire": "Vervallen punten",
}
ENGLISH = {
    "earn": "Purchase P-1",
    "reversal": "Refund of purchase P-1",
    "redeem": "Reward: Cake",
    "cancel": "Cancelled reward: Cake",
    "expire": "Points expired",
}


@pytest.fixture
def switched_member(program, admin_user):
    """A member whose whole history was written while they read Dutch, now reading English."""
    member = MemberWithLoginFactory(language="nl")
    partner = PartnerFactory()
    with time_machine.travel(timezone.now() - dt.timedelta(days=800)):
        points_credit(member=member, points=40, reason="Welkomstbonus")
    purchase = purchase_record(
        partner=partner, external_id="P-1", member=member, amount="100.00"
    ).purchase
    purchase_refund(purchase=purchase, amount="10.00")
    reward = RewardFactory(kind="product", points_cost=30, name_nl="Taart", name_en="Cake")
    redemption = reward_services.reward_redeem(member=member, reward=reward)
    reward_services.redemption_cancel(redemption=redemption)
    points_expire()
    points_adjust(member=member, points=5, reason="Goodwill na klacht", staff_user=admin_user)
    member.language = "en"
    member.save(update_fields=["language"])
    return member


def test_every_history_entry_is_shown_in_the_language_the_member_reads_now(client, switched_member):
    client.login(username=switched_member.email, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get(reverse("points:history")).content.decode()

    for text in ENGLISH.values():
        assert text in page
    for text in DUTCH.values():
        assert text not in page
    assert "Goodwill na klacht" in page  # what staff typed stays as typed
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "nl"
    dutch_page = client.get(reverse("points:history")).content.decode()
    assert all(text in dutch_page for text in DUTCH.values())


def test_staff_read_the_ledger_in_their_language_in_the_admin_and_the_api(
    admin_client, switched_member
):
    url = reverse("admin:loyalty_ledgerentry_changelist")
    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    dutch = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    # The partner who recorded the purchase may read the member's ledger.
    api = client_for(Purchase.objects.get(member=switched_member).partner)
    answer = api.get(
        f"/api/v1/members/{switched_member.member_number}/ledger/", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert all(text in english for text in ENGLISH.values())
    assert all(text in dutch for text in DUTCH.values())
    assert answer.status_code == 200, answer.content
    assert {row["reason"] for row in answer.json()["results"]} >= set(ENGLISH.values())


def test_the_stored_reason_is_in_the_programs_default_language(switched_member):
    stored = set(LedgerEntry.objects.values_list("reason", flat=True))

    assert set(DUTCH.values()) <= stored  # LANGUAGE_CODE is nl
    assert LedgerEntry.objects.filter(reason_key="").count() == 2  # the two typed by hand


# --- the data migration ---------------------------------------------------------------------


def test_the_migration_turns_known_texts_in_either_language_into_keys(switched_member):
    """Entries written before keys existed: the texts in both languages and the demo's."""
    entries = LedgerEntry.objects.filter(account__member=switched_member)
    texts = {
        "earn": "Purchase P-1",  # written for an English reader
        "reversal": "Terugbetaling van aankoop P-1",
        "redeem": "Reward: Cake",
        "expire": "Punten verlopen",  # the demo's wording
    }
    for kind, text in texts.items():
        entries.filter(kind=kind).update(reason=text, reason_key="", reason_params=None)
    cancel = entries.filter(kind="reversal", refund__isnull=True)
    cancel.update(reason="Geannuleerde beloning: Taart", reason_key="", reason_params=None)
    entries.filter(reason="Goodwill na klacht").update(reason="Aankoop P-1")  # staff's text
    loyalty_migration = importlib.import_module("loyalty.migrations.0010_ledger_reasons_to_keys")
    rewards_migration = importlib.import_module("rewards.migrations.0004_ledger_reward_reasons")

    loyalty_migration.ledger_reasons_to_keys(apps, None)
    rewards_migration.ledger_reward_reasons(apps, None)

    with translation.override("en"):
        shown = {entry.reason_text for entry in entries}
    assert set(ENGLISH.values()) <= shown
    staff = entries.get(kind="adjust", points=5)
    assert (staff.reason_key, staff.reason_text) == ("", "Aankoop P-1")  # no purchase: as typed
    assert entries.get(kind="earn").reason_params == {"id": "P-1"}
    assert entries.get(kind="redeem").reason_key == reasons.REWARD


def test_the_migration_gives_the_points_name_its_english_value(program):
    program.points_name, program.points_name_en = "points", ""
    program.save()
    migration = importlib.import_module("loyalty.migrations.0010_ledger_reasons_to_keys")

    migration.points_name_per_language(apps, None)

    program.refresh_from_db()
    assert (program.points_name, program.points_name_en) == ("punten", "points")
