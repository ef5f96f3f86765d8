"""Login throttling (django-axes): per e-mail address and per client address, on the portal
and the admin login, with one lockout page that tells nobody whether an address is known."""

import datetime as dt
import re

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from members import throttling
from tests.factories import MemberWithLoginFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"  # the factories' password
LOCKED = "Too many failed login attempts. Try again in 15 minutes, or reset your password."
PORTAL = "members:login"
ADMIN = "admin:login"


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read English texts; the product's default language is Dutch."""
    settings.LANGUAGE_CODE = "en"


def log_in(client, url_name, email, password, address="10.0.0.1", **extra):
    return client.post(
        reverse(url_name),
        {"username": email, "password": password},
        REMOTE_ADDR=address,
        **extra,
    )


def fail_five_times(client, url_name, email, address="10.0.0.1"):
    for _attempt in range(5):
        response = log_in(client, url_name, email, "wrong-password", address)
    return response


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_on_the_portal_refuse_the_right_one_after(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email)

    response = log_in(client, PORTAL, member.email, PASSWORD)

    assert response.status_code == 429
    assert not logged_in(client)
    assert LOCKED in response.content.decode()
    assert 'class="error-summary" id="error-summary" role="alert"' in response.content.decode()
    assert response.templates[0].name == "members/login.html"


def test_five_wrong_passwords_on_the_admin_refuse_the_right_one_after(client, program):
    staff = StaffUserFactory()
    fail_five_times(client, ADMIN, staff.email)

    response = log_in(client, ADMIN, staff.email, PASSWORD)

    assert response.status_code == 429
    assert not logged_in(client)
    assert LOCKED in response.content.decode()
    assert response.templates[0].name == "admin/login.html"
    assert 'class="errornote"' in response.content.decode()  # the admin's own style


def test_the_lockout_page_is_the_same_for_a_registered_and_an_unknown_address(client, program):
    member = MemberWithLoginFactory(email="bekend@example.com")
    fail_five_times(client, PORTAL, member.email, address="10.0.0.1")
    fail_five_times(client, PORTAL, "onbekend@example.com", address="10.0.0.2")

    pages = [
        log_in(client, PORTAL, "bekend@example.com", PASSWORD, "10.0.0.1"),
        log_in(client, PORTAL, "bekend@example.com", "wrong-password", "10.0.0.1"),
        log_in(client, PORTAL, "onbekend@example.com", PASSWORD, "10.0.0.2"),
        log_in(client, PORTAL, "onbekend@example.com", "wrong-password", "10.0.0.2"),
    ]

    def comparable(response) -> str:
        text = response.content.decode().replace("onbekend@", "bekend@")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)

    assert {page.status_code for page in pages} == {429}
    assert len({comparable(page) for page in pages}) == 1
    assert LOCKED in comparable(pages[0])


def test_the_lockout_page_speaks_the_visitors_language(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email)

    response = log_in(client, PORTAL, member.email, PASSWORD, HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 429
    assert response["Content-Language"] == "nl"
    assert '<html lang="nl">' in response.content.decode()


def test_after_the_cool_off_the_right_password_logs_in(client, program):
    member = MemberWithLoginFactory()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail_five_times(client, PORTAL, member.email)
    with time_machine.travel(start + dt.timedelta(minutes=14), tick=False):
        assert log_in(client, PORTAL, member.email, PASSWORD).status_code == 429

    # The refused attempt at minute 14 started the cool-off again.
    with time_machine.travel(start + dt.timedelta(minutes=14 + 15, seconds=1), tick=False):
        response = log_in(client, PORTAL, member.email, PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_one_address_trying_many_accounts_is_locked_out_of_every_account(client, program):
    member = MemberWithLoginFactory()
    for number in range(5):
        log_in(client, PORTAL, f"guess{number}@example.com", "wrong-password", "10.0.0.66")

    from_attacker = log_in(client, PORTAL, member.email, PASSWORD, "10.0.0.66")
    from_member = log_in(client, PORTAL, member.email, PASSWORD, "10.0.0.7")

    assert from_attacker.status_code == 429
    assert from_member.status_code == 302


def test_one_account_tried_from_many_addresses_is_locked(client, program):
    member = MemberWithLoginFactory()
    for number in range(5):
        log_in(client, PORTAL, member.email, "wrong-password", f"10.0.1.{number}")

    response = log_in(client, PORTAL, member.email, PASSWORD, "10.0.1.99")

    assert response.status_code == 429
    assert not logged_in(client)


def test_changing_the_letter_case_of_the_address_counts_for_the_same_account(client, program):
    member = MemberWithLoginFactory(email="sanne@example.com")
    for number, email in enumerate(
        ["Sanne@example.com", "SANNE@EXAMPLE.COM", " sanne@Example.com"] * 2
    ):
        log_in(client, PORTAL, email, "wrong-password", f"10.0.2.{number}")

    response = log_in(client, PORTAL, member.email, PASSWORD, "10.0.2.99")

    assert response.status_code == 429


def test_a_forwarded_for_header_is_ignored_without_trusted_proxies(client, program):
    member = MemberWithLoginFactory()
    for number in range(5):
        log_in(
            client,
            PORTAL,
            f"guess{number}@example.com",
            "wrong-password",
            "10.0.0.66",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{number}",
        )

    response = log_in(
        client, PORTAL, member.email, PASSWORD, "10.0.0.66", HTTP_X_FORWARDED_FOR="192.0.2.200"
    )

    assert response.status_code == 429


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(client, program, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    member = MemberWithLoginFactory()
    for number in range(5):
        # The client forges the left part; the proxy appends the address it saw.
        log_in(
            client,
            PORTAL,
            f"guess{number}@example.com",
            "wrong-password",
            "10.9.9.9",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{number}, 192.0.2.66",
        )

    from_attacker = log_in(
        client, PORTAL, member.email, PASSWORD, "10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.66"
    )
    from_member = log_in(
        client, PORTAL, member.email, PASSWORD, "10.9.9.9", HTTP_X_FORWARDED_FOR="192.0.2.7"
    )

    assert from_attacker.status_code == 429
    assert from_member.status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.66"}


@pytest.mark.parametrize("role", ["Support agent", "Program manager"])
def test_staff_unlock_a_locked_out_member_with_the_admin_action(client, program, role):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email, address="10.0.0.1")
    agent = StaffUserFactory()
    agent.groups.add(Group.objects.get(name=role))
    client.force_login(agent)
    attempts = AccessAttempt.objects.filter(username=member.email)

    response = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [attempt.pk for attempt in attempts]},
        follow=True,
    )
    client.logout()
    login = log_in(client, PORTAL, member.email, PASSWORD, "10.0.0.1")

    assert "Unlocked 1 login(s)" in response.content.decode()
    assert login.status_code == 302
    assert not AccessAttempt.objects.exists()


def test_unlocking_one_member_leaves_the_attackers_other_failures_counting(client, program):
    member = MemberWithLoginFactory()
    for number in range(4):
        log_in(client, PORTAL, f"guess{number}@example.com", "wrong-password", "10.0.0.66")
    log_in(client, PORTAL, member.email, "wrong-password", "10.0.0.66")
    manager = StaffUserFactory()
    manager.groups.add(Group.objects.get(name="Program manager"))
    client.force_login(manager)

    client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {
            "action": "unlock",
            "_selected_action": [AccessAttempt.objects.get(username=member.email).pk],
        },
    )
    client.logout()

    assert AccessAttempt.objects.filter(ip_address="10.0.0.66").count() == 4
    assert log_in(client, PORTAL, member.email, PASSWORD, "10.0.0.7").status_code == 302


def test_staff_without_the_permission_cannot_unlock(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email)
    client.force_login(StaffUserFactory())

    response = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [AccessAttempt.objects.get().pk]},
    )

    assert response.status_code == 403
    assert AccessAttempt.objects.count() == 1


def test_a_password_reset_unlocks_the_account(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email, address="127.0.0.1")
    assert log_in(client, PORTAL, member.email, PASSWORD, "127.0.0.1").status_code == 429
    uid = urlsafe_base64_encode(force_bytes(member.user.pk))
    token = default_token_generator.make_token(member.user)

    form_page = client.get(
        reverse("members:password_reset_confirm", args=[uid, token]), follow=True
    )
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-9", "new_password2": "a-brand-new-secret-9"},
    )
    login = log_in(client, PORTAL, member.email, "a-brand-new-secret-9", "127.0.0.1")

    assert done.status_code == 302
    assert login.status_code == 302
    assert logged_in(client)


def test_unlock_asked_for_nothing_refuses_and_unlocks_nobody(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email)

    with pytest.raises(ValueError):
        throttling.login_unlock(usernames=["   "])

    assert AccessAttempt.objects.count() == 1


def test_the_test_clients_login_goes_through_the_throttle(client, program):
    member = MemberWithLoginFactory()
    fail_five_times(client, PORTAL, member.email, address="127.0.0.1")

    assert not client.login(username=member.email, password=PASSWORD)
