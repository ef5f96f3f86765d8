"""Messages: templates checked on save, personalisation, fallback language, preview, test send."""

import pytest
from django.urls import reverse

from campaigns import services
from campaigns.models import Message
from loyalty.services import points_credit
from tests.conftest import message_text
from tests.factories import MemberFactory, RewardFactory

pytestmark = pytest.mark.django_db


def _form_data(message: Message, **changes) -> dict:
    data = {
        name: getattr(message, name)
        for name in (
            "name",
            *(
                f"{part}_{lang}"
                for lang in ("nl", "en")
                for part in ("subject", "preheader", "html", "text")
            ),
        )
    }
    return {**data, **changes}


def test_an_unknown_variable_is_a_form_error_on_save_and_nothing_is_saved(admin_client, message):
    url = reverse("admin:campaigns_message_change", args=[message.pk])

    response = admin_client.post(
        url, _form_data(message, html_en="<p>Hi {{ member.nickname }}</p>")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "member.nickname" in errors["html_en"][0]
    message.refresh_from_db()
    assert "nickname" not in message.html_en


def test_a_broken_tag_is_a_form_error_on_save(admin_client, message):
    url = reverse("admin:campaigns_message_change", args=[message.pk])

    response = admin_client.post(url, _form_data(message, text_nl="{% for x in rewards %}open"))

    assert "text_nl" in response.context["adminform"].form.errors
    assert Message.objects.get(pk=message.pk).text_nl == message.text_nl


def test_an_include_of_a_project_template_is_refused(admin_client, message):
    url = reverse("admin:campaigns_message_change", args=[message.pk])

    response = admin_client.post(
        url, _form_data(message, html_nl='{% include "emails/_layout.html" %}')
    )

    assert "html_nl" in response.context["adminform"].form.errors


def test_a_valid_message_is_saved_and_the_admin_names_the_missing_language(admin_client, message):
    url = reverse("admin:campaigns_message_change", args=[message.pk])

    response = admin_client.post(
        url, _form_data(message, subject_en="", html_en="", text_en=""), follow=True
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.missing_languages == ["en"]
    listing = admin_client.get(reverse("admin:campaigns_message_changelist"))
    assert "English" in listing.content.decode()


def test_the_member_is_personalised_in_their_language_with_css_inlined(program, message):
    member = MemberFactory(first_name="Noor", language="en")
    points_credit(member=member, points=1500, reason="Welcome")
    RewardFactory(name_en="Cinema", points_cost=1000)
    RewardFactory(name_en="Too dear", points_cost=5000)

    rendered = services.message_preview(message=message, member=member, language="en")

    assert rendered.subject == "Hello Noor"
    assert "your balance is 1,500." in rendered.html
    assert "Cinema: 1,000" in rendered.html
    assert "Too dear" not in rendered.html
    assert 'class="lead" style="color: #0b5c4a' in rendered.html or "color:#0b5c4a" in rendered.html
    assert "<style>" not in rendered.html
    assert "You have 1,500 points" in rendered.html  # the preheader
    assert "Klantenclub" in rendered.html  # the shared layout's header
    assert "your balance is 1,500." in rendered.text
    assert "/portal/email/unsubscribe/" in rendered.text


def test_a_missing_translation_falls_back_to_the_default_language(program, message, settings):
    settings.LANGUAGE_CODE = "nl"
    message.subject_en = ""
    message.save()
    member = MemberFactory(first_name="Sam", language="en")

    rendered = services.message_preview(message=message, member=member, language="en")

    assert rendered.language == "nl"
    assert rendered.subject == "Hallo Sam"


def test_the_preview_shows_html_and_text_side_by_side(admin_client, program, message):
    member = MemberFactory(first_name="Noor", language="nl")
    url = reverse("admin:campaigns_message_preview", args=[message.pk])

    response = admin_client.get(url, {"member": member.member_number, "language": "nl"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "srcdoc=" in body and "Hoi Noor" in body
    assert "<pre>Hoi Noor, je saldo is 0." in body


def test_send_a_test_goes_through_smtp_with_one_click_unsubscribe_headers(
    admin_client, program, message, smtp_sink
):
    url = reverse("admin:campaigns_message_preview", args=[message.pk])

    response = admin_client.post(
        url + "?language=en", {"member": "", "language": "en", "to": "pm@example.com"}, follow=True
    )

    assert "A test was sent to pm@example.com." in response.content.decode()
    (received,) = smtp_sink.wait_for(1)
    assert received["To"] == "pm@example.com"
    assert received["Subject"] == "Hello Sanne"  # the sample member
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(received["List-Unsubscribe"]).strip().startswith("<http")
    assert "your balance is 1,250." in message_text(received)


def test_support_agents_see_messages_but_cannot_change_or_send(client, message, staff_in):
    client.force_login(staff_in("Support agent"))

    assert (
        client.get(reverse("admin:campaigns_message_change", args=[message.pk])).status_code == 200
    )
    preview = reverse("admin:campaigns_message_preview", args=[message.pk])
    assert client.get(preview).status_code == 200
    assert client.post(preview, {"language": "nl", "to": "x@example.com"}).status_code == 403
    assert (
        client.post(
            reverse("admin:campaigns_message_change", args=[message.pk]), _form_data(message)
        ).status_code
        == 403
    )
