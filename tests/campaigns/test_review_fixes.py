"""Regressions found by using the campaigns back office as a program manager and support agent."""

import re

import pytest
from django.urls import reverse

from campaigns.models import Message, SuppressedAddress
from tests.factories import AutomationFactory, RecipientFactory

pytestmark = pytest.mark.django_db


def test_a_template_error_in_the_only_language_is_not_also_called_a_missing_part(admin_client):
    """Written in Dutch only, with a broken HTML part: the error names that part, and the form
    does not also claim the subject, HTML and text were not written."""
    response = admin_client.post(
        reverse("admin:campaigns_message_add"),
        {
            "name": "Only Dutch",
            "subject_nl": "Hoi {{ member.first_name }}",
            "html_nl": "<p>Hoi</p>{% if %}",
            "text_nl": "Hoi {{ member.first_name }}",
        },
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "html_nl" in form.errors
    assert form.non_field_errors() == []
    assert not Message.objects.filter(name="Only Dutch").exists()


def test_a_message_with_no_language_complete_still_says_so(admin_client):
    response = admin_client.post(
        reverse("admin:campaigns_message_add"),
        {"name": "Half", "subject_nl": "Hoi", "html_nl": "<p>Hoi</p>"},
    )

    form = response.context["adminform"].form
    assert len(form.non_field_errors()) == 1
    assert not Message.objects.filter(name="Half").exists()


@pytest.mark.parametrize(
    ("reader", "field", "source", "expected"),
    [
        ("en", "html_nl", "<p>Hoi</p>{% if %}", "Template error"),
        ("en", "text_nl", "Hoi {{ member.nickname }}", "Unknown variable"),
        ("nl", "html_en", "<p>Hi</p>{% if %}", "Fout in de template"),
    ],
)
def test_a_template_error_is_in_the_readers_language_not_the_parts(
    admin_client, message, reader, field, source, expected
):
    data = {
        name: getattr(message, name)
        for name in (
            "name",
            *(
                f"{p}_{lang}"
                for lang in ("nl", "en")
                for p in ("subject", "preheader", "html", "text")
            ),
        )
    }
    response = admin_client.post(
        reverse("admin:campaigns_message_change", args=[message.pk]),
        {**data, field: source},
        HTTP_ACCEPT_LANGUAGE=reader,
    )

    assert response.context["adminform"].form.errors[field][0].startswith(expected)


def test_the_recipients_show_segment_quadrant_and_language_by_name_not_key(admin_client):
    recipient = RecipientFactory(segment="at_risk", quadrant="butterflies", language="nl")

    listing = admin_client.get(reverse("admin:campaigns_recipient_changelist")).content.decode()
    detail = admin_client.get(
        reverse("admin:campaigns_recipient_change", args=[recipient.pk])
    ).content.decode()

    assert "At risk" in listing and "at_risk" not in listing
    for shown in ("At risk", "Butterflies", "Dutch"):
        assert shown in detail
    assert "at_risk" not in detail and "butterflies" not in detail


def test_an_address_already_suppressed_is_a_plain_form_error_not_the_constraint_name(
    admin_client,
):
    SuppressedAddress.objects.create(email="blocked@example.com", reason="manual")

    response = admin_client.post(
        reverse("admin:campaigns_suppressedaddress_add"),
        {"email": "Blocked@Example.com", "reason": "manual", "note": ""},
    )

    assert response.status_code == 200
    errors = str(response.context["adminform"].form.errors)
    assert "already on the suppression list" in errors
    assert "suppressed_email_ci_unique" not in errors
    assert SuppressedAddress.objects.count() == 1


def test_send_a_test_on_the_demos_console_backend_says_it_was_not_delivered(
    admin_client, program, message, settings, capsys
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    response = admin_client.post(
        reverse("admin:campaigns_message_preview", args=[message.pk]),
        {"to": "pm@example.com", "language": "en", "member": ""},
        follow=True,
    )

    page = response.content.decode()
    assert "was not delivered" in page and "A test was sent" not in page
    assert "To: pm@example.com" in capsys.readouterr().out  # where the demo's mail went


def test_the_automation_page_labels_its_on_off_state_status_not_on(admin_client):
    """In Dutch the label "on" became "Aan:", read as "To:" next to "Uit" (off)."""
    automation = AutomationFactory()

    page = admin_client.get(
        reverse("admin:campaigns_automation_change", args=[automation.pk]),
        HTTP_ACCEPT_LANGUAGE="nl",
    ).content.decode()

    row = re.search(r"field-active_text.*?</div>\s*</div>", page, re.S)
    assert row is not None
    assert "Status:" in row.group(0) and "Aan:" not in row.group(0)


def test_the_campaign_forms_tick_box_labels_start_with_a_capital_like_the_others(admin_client):
    page = admin_client.get(
        reverse("admin:campaigns_campaign_add"), HTTP_ACCEPT_LANGUAGE="nl"
    ).content.decode()

    for name in ("quadrants", "exclude_segments", "exclude_quadrants", "languages"):
        label = re.search(
            rf"<(?:label|legend)[^>]*>([^<]*)</(?:label|legend)>\s*<div id=\"id_{name}\"", page
        )
        assert label is not None, name
        assert label.group(1)[0].isupper(), label.group(1)
