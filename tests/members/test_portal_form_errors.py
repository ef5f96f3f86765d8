"""Every portal form after a failed submit: one error summary whose links reach the fields,
fields whose aria-describedby ids exist, invalid fields marked, and what was typed kept."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from rewards.models import Redemption
from tests.factories import MemberWithLoginFactory, RewardFactory, TermsVersionFactory

pytestmark = pytest.mark.django_db

PASSWORD = "tulips-and-windmills-42"


class Page(HTMLParser):
    """The parts of a page these tests read: elements by id, inputs, alerts, summary links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.alerts = 0
        self.summary_links: list[str] = []
        self._in_summary = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if attributes.get("role") == "alert":
            self.alerts += 1
        if attributes.get("data-error-summary") is not None or "data-error-summary" in attributes:
            self._in_summary = True
        if self._in_summary and tag == "a":
            self.summary_links.append(attributes.get("href", ""))
        if tag in ("input", "select") and attributes.get("type") not in ("hidden", "submit"):
            self.inputs[attributes.get("name") or ""] = attributes

    def handle_endtag(self, tag):
        if tag == "ul" and self._in_summary:
            self._in_summary = False


def assert_errors_are_tied_to_their_fields(response, invalid: set[str]) -> Page:
    assert response.status_code in (200, 429)
    page = Page(response.content.decode())
    assert page.alerts == 1, "one alert region: the summary"
    assert "error-summary" in page.ids
    for name, attributes in page.inputs.items():
        for described_by in (attributes.get("aria-describedby") or "").split():
            assert described_by in page.ids, f"{name}: aria-describedby {described_by} missing"
        if name in invalid:
            assert attributes.get("aria-invalid") == "true", name
            assert attributes["id"] + "_error" in (attributes.get("aria-describedby") or "")
        else:
            assert "aria-invalid" not in attributes, name
    for href in page.summary_links:
        assert href.startswith("#") and href[1:] in page.ids, href
    assert {href[1:] for href in page.summary_links} >= {page.inputs[n]["id"] for n in invalid}
    return page


def test_a_failed_enrolment_summarises_its_errors_and_keeps_what_was_typed(client, program):
    TermsVersionFactory()

    response = client.post(
        reverse("members:enrol"),
        {
            "email": "sanne@example.com",
            "first_name": "",
            "last_name": "Jansen",
            "language": "en",
            "password1": PASSWORD,
            "password2": PASSWORD + "x",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    page = assert_errors_are_tied_to_their_fields(
        response, {"first_name", "birth_date", "password2", "accept_terms"}
    )
    content = response.content.decode()
    assert "There is a problem" in content
    assert "Enter your first name." in content
    assert "Please enter your birth date." in content
    assert "You need to accept the current terms and conditions." in content
    assert page.inputs["email"]["value"] == "sanne@example.com"
    assert page.inputs["password1"]["value"] == PASSWORD
    assert page.inputs["password2"]["value"] == PASSWORD + "x"


def test_a_first_enrolment_form_has_empty_passwords_and_marks_required_fields(client, program):
    TermsVersionFactory()

    response = client.get(reverse("members:enrol"), HTTP_ACCEPT_LANGUAGE="en")

    page = Page(response.content.decode())
    assert page.alerts == 0
    assert "value" not in page.inputs["password1"]
    for name in (
        "email",
        "first_name",
        "last_name",
        "birth_date",
        "language",
        "password1",
        "accept_terms",
    ):
        attributes = page.inputs[name]
        assert "required" in attributes or attributes.get("aria-required") == "true", name
    assert "required" not in page.inputs["marketing_consent"]
    # The birth date is asked for because the program has a minimum age: marked as such.
    content = response.content.decode()
    assert content.count('<span class="visually-hidden">(required)</span>') == 8
    # The portal's own password advice, not Django's formal one.
    assert page.inputs["password1"]["aria-describedby"] == "id_password1_helptext"
    assert "Use at least 8 characters" in content
    assert "Your password can" not in content


def test_without_a_minimum_age_the_birth_date_is_optional(client, program):
    program.minimum_age = 0
    program.save()

    response = client.get(reverse("members:enrol"))

    assert "required" not in Page(response.content.decode()).inputs["birth_date"]


def test_a_failed_login_summarises_and_does_not_echo_the_password(client, program):
    member = MemberWithLoginFactory(user__password=PASSWORD)

    response = client.post(
        reverse("members:login"), {"username": member.email, "password": "wrong-one"}
    )

    page = assert_errors_are_tied_to_their_fields(response, set())
    assert page.summary_links == ["#id_username"]  # the form's error leads to its first field
    assert page.inputs["username"]["value"] == member.email
    assert "value" not in page.inputs["password"]


def test_an_empty_login_names_both_fields(client, program):
    response = client.post(reverse("members:login"), {"username": "", "password": ""})

    assert_errors_are_tied_to_their_fields(response, {"username", "password"})
    assert "Vul je wachtwoord in." in response.content.decode()  # the program's language: Dutch


def test_a_failed_profile_change_summarises_its_errors(member_client):
    response = member_client.post(
        reverse("members:account"),
        {"profile": "1", "first_name": "", "last_name": "Jansen", "language": "en"},
    )

    assert_errors_are_tied_to_their_fields(response, {"first_name", "birth_date"})


def test_a_failed_password_change_keeps_the_typed_passwords(client, program):
    member = MemberWithLoginFactory(user__password=PASSWORD, language="en")
    client.force_login(member.user)

    response = client.post(
        reverse("members:password_change"),
        {
            "old_password": "not-my-password",
            "new_password1": "herring-and-onions-77",
            "new_password2": "herring-and-onions-77",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    page = assert_errors_are_tied_to_their_fields(response, {"old_password"})
    assert "Your current password is not correct." in response.content.decode()
    assert page.inputs["new_password1"]["value"] == "herring-and-onions-77"
    assert page.inputs["new_password2"]["value"] == "herring-and-onions-77"
    assert "Use at least 8 characters" in response.content.decode()


def test_a_failed_password_reset_request_summarises_its_error(client, program):
    response = client.post(reverse("members:password_reset"), {"email": "not-an-address"})

    assert_errors_are_tied_to_their_fields(response, {"email"})


def test_a_failed_new_password_after_a_reset_link_summarises_and_keeps_it(client, program):
    member = MemberWithLoginFactory(user__password=PASSWORD)
    link = reverse(
        "members:password_reset_confirm",
        args=[
            urlsafe_base64_encode(force_bytes(member.user.pk)),
            default_token_generator.make_token(member.user),
        ],
    )
    form_page = client.get(link, follow=True)

    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "herring-and-onions-77", "new_password2": "herring-and-onions"},
    )

    page = assert_errors_are_tied_to_their_fields(response, {"new_password2"})
    assert page.inputs["new_password1"]["value"] == "herring-and-onions-77"


def test_a_failed_erasure_summarises_and_erases_nothing(client, program):
    member = MemberWithLoginFactory(user__password=PASSWORD)
    client.force_login(member.user)

    response = client.post(reverse("members:erase"), {"password": ""})

    page = assert_errors_are_tied_to_their_fields(response, {"password"})
    assert "value" not in page.inputs["password"]
    member.refresh_from_db()
    assert member.user_id is not None and member.email


def test_a_refused_redemption_says_why_in_the_summary_of_its_confirm_page(member_client):
    reward = RewardFactory(kind="product", points_cost=900)

    response = member_client.post(reverse("rewards:redeem", args=[reward.pk]))

    assert response.status_code == 409
    page = Page(response.content.decode())
    assert page.alerts == 1 and "error-summary" in page.ids
    assert "900 punten nodig, 500 beschikbaar." in response.content.decode()
    assert not Redemption.objects.exists()
