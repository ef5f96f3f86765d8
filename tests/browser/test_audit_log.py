"""A support agent corrects points; a program manager finds the correction in the audit log
(list, filter, entry, the member's history), in Dutch and English, on a phone and a laptop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from loyalty.audit.models import AuditAction
from loyalty.audit.services import audit_record, change
from loyalty.services import points_credit
from tests.factories import MemberFactory, StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/briefs/shots/audit")
PASSWORD = "audit-log-2026!"


def log_in(browser, live_server, email: str, *, language: str, width: int):
    context = browser.new_context(
        locale="nl-NL" if language == "nl" else "en-GB",
        viewport={"width": width, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    return context, page


@pytest.mark.parametrize("language", ["en", "nl"])
def test_a_correction_is_found_in_the_audit_log(browser, live_server, program, language):
    agent = StaffUserFactory(email="agent@club.example", password=PASSWORD)
    agent.groups.add(Group.objects.get(name="Support agent"))
    manager = StaffUserFactory(email="manager@club.example", password=PASSWORD)
    manager.groups.add(Group.objects.get(name="Program manager"))
    member = MemberFactory(first_name="Noor", last_name="Jansen")
    points_credit(member=member, points=1250, reason="Welcome")
    audit_record(
        actor=manager,
        action=AuditAction.CHANGED,
        obj=program,
        changes={"name": change("Klantenclub", "Spaarclub")},
        admin_history=False,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)

    context, page = log_in(browser, live_server, agent.email, language=language, width=1366)
    page.goto(f"{live_server.url}/admin/members/member/{member.pk}/adjust-points/")
    page.fill("#id_points", "-250")
    page.fill("#id_reason", "Double booking on 3 March")
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(rf"/admin/members/member/{member.pk}/change/$"))
    context.close()

    for width in (1366, 390):
        context, page = log_in(browser, live_server, manager.email, language=language, width=width)
        page.goto(f"{live_server.url}/admin/audit/auditentry/?action__exact=points.adjusted")
        page.get_by_text("Double booking on 3 March").first.wait_for()
        assert page.locator("#result_list tbody tr").count() == 1
        assert "agent@club.example" in page.locator("#result_list").inner_text()
        assert "Noor" not in page.locator("#result_list").inner_text()
        page.screenshot(path=SHOTS / f"log-{language}-{width}.png", full_page=True)

        page.locator("#result_list tbody tr a").first.click()
        page.locator("table.audit-changes").wait_for()  # field, old and new value
        body = page.locator("#content").inner_text()
        assert "1250" in body.replace(".", "").replace(",", "") and "1000" in body.replace(
            ".", ""
        ).replace(",", "")
        assert page.locator("input[name=_save]").count() == 0
        page.screenshot(path=SHOTS / f"entry-{language}-{width}.png", full_page=True)

        page.goto(f"{live_server.url}/admin/members/member/{member.pk}/change/")
        assert page.locator("html").get_attribute("lang") == language
        page.locator("a[href*='/admin/audit/auditentry/?content_type=']").click()
        page.get_by_text("Double booking on 3 March").first.wait_for()
        page.goto(f"{live_server.url}/admin/members/member/{member.pk}/history/")
        page.get_by_text("Double booking on 3 March").wait_for()
        page.screenshot(path=SHOTS / f"member-history-{language}-{width}.png", full_page=True)
        if width == 1366:
            page.goto(f"{live_server.url}/admin/loyalty/programsettings/1/history/")
            page.get_by_text("Spaarclub").wait_for()
            page.screenshot(path=SHOTS / f"settings-history-{language}-{width}.png")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0
        context.close()
