"""Error pages in house style and the visitor's language, each with a way back; a GET on a
form's POST address gets the form's page or a styled 405, never a blank page."""

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import get_resolver, reverse

from members.views import errors

pytestmark = pytest.mark.django_db


def in_house_style(page: str) -> bool:
    return 'class="site-header"' in page and "portal/portal.css" in page


def test_an_unknown_address_is_a_styled_404_in_the_visitors_language(client, program):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "nl"

    response = client.get("/portal/does-not-exist/")

    page = response.content.decode()
    assert response.status_code == 404
    assert in_house_style(page)
    assert '<html lang="nl">' in page
    assert f'href="{reverse("members:login")}"' in page  # the way back


def test_the_404_speaks_english_to_an_english_visitor(client, program):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = client.get("/portal/rewards/mine/99999/x/")

    assert response.status_code == 404
    assert "We cannot find this page" in response.content.decode()


def test_the_root_urls_name_the_styled_handlers():
    resolver = get_resolver()
    assert resolver.resolve_error_handler(403) is errors.permission_denied
    assert resolver.resolve_error_handler(404) is errors.page_not_found
    assert resolver.resolve_error_handler(500) is errors.server_error


def test_the_500_and_403_pages_are_styled_with_a_way_back(program, settings):
    settings.LANGUAGE_CODE = "en"
    request = RequestFactory().get("/portal/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()

    server_error = errors.server_error(request)
    forbidden = errors.permission_denied(request, PermissionError())

    assert server_error.status_code == 500
    assert "Something went wrong on our side" in server_error.content.decode()
    assert in_house_style(server_error.content.decode())
    assert forbidden.status_code == 403 and in_house_style(forbidden.content.decode())
    assert f'href="{reverse("members:login")}"' in forbidden.content.decode()


def test_the_500_page_still_answers_when_the_styled_page_cannot_render(monkeypatch, program):
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(errors, "render", broken)

    response = errors.server_error(RequestFactory().get("/"))

    assert response.status_code == 500 and b"Server error (500)" in response.content


@pytest.mark.parametrize("name", ["members:consent", "members:data_export", "members:profiling"])
def test_a_get_on_an_account_form_address_goes_to_the_account_page(member_client, name):
    response = member_client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"] == reverse("members:account")


def test_a_get_on_the_resend_address_goes_to_the_login_page(client, program):
    response = client.get(reverse("members:resend_confirmation"))

    assert response.status_code == 302 and response["Location"] == reverse("members:login")


def test_a_get_on_logout_is_a_styled_405_that_keeps_the_member_logged_in(member_client):
    member_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    response = member_client.get(reverse("members:logout"))

    page = response.content.decode()
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"
    assert in_house_style(page) and "This page opens from a button" in page
    assert f'href="{reverse("points:dashboard")}"' in page
    assert "_auth_user_id" in member_client.session


def test_other_methods_on_portal_forms_get_the_styled_405(member_client):
    response = member_client.put(reverse("members:consent"))
    enrol = member_client.delete(reverse("members:enrol"))

    assert response.status_code == 405 and response["Allow"] == "POST"
    assert in_house_style(response.content.decode())
    assert enrol.status_code == 405 and enrol["Allow"] == "GET, POST"
