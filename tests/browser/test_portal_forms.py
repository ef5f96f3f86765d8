"""Portal forms with a keyboard and a screen reader's view of them, in a real browser: a failed
submit focuses an error summary whose links lead to the fields, every aria-describedby names
an element that exists, what was typed stays, and axe-core finds nothing serious."""

from pathlib import Path

import pytest

from members.models import Member
from tests.factories import MemberFactory, TermsVersionFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SHOTS = Path("/tmp/briefs/shots/forms")
PASSWORD = "stroopwafels-every-day-7"
LOCALES = {"en": "en-GB", "nl": "nl-NL"}
# Every aria-describedby id that names no element, and every invalid field without an error.
BROKEN_DESCRIPTIONS = """() => {
  const broken = [];
  for (const element of document.querySelectorAll("[aria-describedby]")) {
    for (const id of element.getAttribute("aria-describedby").split(/\\s+/)) {
      if (id && !document.getElementById(id)) broken.push(element.id + " -> " + id);
    }
  }
  for (const element of document.querySelectorAll("[aria-invalid=true]")) {
    if (!document.getElementById(element.id + "_error")) broken.push(element.id + " no error");
  }
  return broken;
}"""


@pytest.fixture
def new_page(browser, live_server, settings):
    """A page in `language` at `width` px wide (the portal speaks the browser's language)."""
    settings.SITE_URL = live_server.url
    contexts = []

    def open_page(language: str = "en", width: int = 1280):
        context = browser.new_context(
            locale=LOCALES[language], viewport={"width": width, "height": 900}
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def focused_id(page) -> str:
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def tab_to(page, element_id: str, limit: int = 40) -> None:
    """Press Tab until the element with `element_id` has the focus, as a keyboard user would."""
    for _press in range(limit):
        if focused_id(page) == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}; stuck at #{focused_id(page)}")


def serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + ", ".join(str(node["target"][0]) for node in violation["nodes"][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_keyboard_only_enrolment_recovers_from_a_failed_first_submit(
    new_page, live_server, program
):
    TermsVersionFactory(version="2026.1")
    page = new_page("en", 1280)
    page.goto(f"{live_server.url}/portal/enrol/")

    # First attempt: no last name, the second password mistyped, the terms not accepted.
    tab_to(page, "id_email")
    page.keyboard.type("noor@example.com")
    tab_to(page, "id_first_name")
    page.keyboard.type("Noor")
    tab_to(page, "id_birth_date")
    page.keyboard.type("05171990")  # the date's parts in Chromium's (en-US) order: mm dd yyyy
    tab_to(page, "id_password1")
    page.keyboard.type(PASSWORD)
    tab_to(page, "id_password2")
    page.keyboard.type(PASSWORD + "!")
    page.keyboard.press("Enter")
    page.locator("#error-summary").wait_for()
    page.wait_for_load_state("load")  # the summary's deferred script has run

    assert focused_id(page) == "error-summary"
    summary = page.get_by_role("alert")
    assert summary.count() == 1
    assert summary.get_by_role("heading", name="There is a problem").is_visible()
    links = summary.get_by_role("link")
    targets = [links.nth(index).get_attribute("href") for index in range(links.count())]
    assert targets == ["#id_last_name", "#id_password2", "#id_accept_terms"]
    assert page.evaluate(BROKEN_DESCRIPTIONS) == []
    for field in ("last_name", "password2", "accept_terms"):
        assert page.locator(f"#id_{field}").get_attribute("aria-invalid") == "true"
    # What was typed is still there, both passwords included.
    assert page.input_value("#id_email") == "noor@example.com"
    assert page.input_value("#id_first_name") == "Noor"
    assert page.input_value("#id_birth_date") == "1990-05-17"
    assert page.input_value("#id_password1") == PASSWORD
    assert page.input_value("#id_password2") == PASSWORD + "!"

    # Each link of the summary puts the focus in its field.
    for index, target in enumerate(targets):
        page.evaluate("() => document.getElementById('error-summary').focus()")
        for _press in range(index + 1):
            page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.getAttribute('href')") == target
        page.keyboard.press("Enter")
        assert f"#{focused_id(page)}" == target

    # Second attempt, from the summary's links: the member is enrolled.
    page.evaluate("() => document.getElementById('error-summary').focus()")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.type("Bakker")
    page.evaluate("() => document.getElementById('error-summary').focus()")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(PASSWORD)
    tab_to(page, "id_accept_terms")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Check your e-mail").wait_for()

    member = Member.objects.get(email="noor@example.com")
    assert (member.first_name, member.last_name) == ("Noor", "Bakker")
    assert str(member.birth_date) == "1990-05-17"


@pytest.mark.parametrize("language", ["en", "nl"])
@pytest.mark.parametrize("width", [390, 1280])
def test_the_enrolment_form_with_errors_has_no_serious_accessibility_violations(
    new_page, live_server, program, language, width
):
    TermsVersionFactory(version="2026.1")
    page = new_page(language, width)
    page.goto(f"{live_server.url}/portal/enrol/")
    page.fill("#id_email", "not-an-address")
    page.fill("#id_password1", "12345")
    page.fill("#id_password2", "54321")
    page.locator("main form button[type=submit]").click()
    page.locator("#error-summary").wait_for()
    page.wait_for_load_state("load")  # the summary's deferred script has run

    assert focused_id(page) == "error-summary"
    assert page.evaluate(BROKEN_DESCRIPTIONS) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    shot(page, f"enrol-errors-{language}-{width}")
    assert serious_violations(page) == []


def _fail_login(page, live_server):
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", "noor@example.com")
    page.fill("#id_password", "not-the-password")
    page.locator("main form button[type=submit]").first.click()


def _fail_password_reset(page, live_server):
    page.goto(f"{live_server.url}/portal/password/reset/")
    page.fill("#id_email", "not-an-address")
    page.locator("main form button[type=submit]").click()


def _log_in(page, live_server):
    page.goto(f"{live_server.url}/portal/login/")
    page.fill("#id_username", "noor@example.com")
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url("**/portal/")


def _fail_profile(page, live_server):
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/account/")
    page.fill("#id_first_name", "")
    page.locator("button[name=profile]").click()


def _fail_password_change(page, live_server):
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/account/password/")
    page.fill("#id_old_password", "not-the-password")
    page.fill("#id_new_password1", "herring-and-onions-77")
    page.fill("#id_new_password2", "herring-and-onions-78")
    page.locator("main form button[type=submit]").click()


def _fail_erasure(page, live_server):
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/portal/account/erase/")
    page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize(
    "fail",
    [_fail_login, _fail_password_reset, _fail_profile, _fail_password_change, _fail_erasure],
    ids=["login", "password-reset", "profile", "password-change", "erase"],
)
@pytest.mark.parametrize(("language", "width"), [("nl", 390), ("en", 1280)])
def test_every_portal_form_with_errors_focuses_its_summary_and_passes_axe(
    new_page, live_server, program, fail, language, width
):
    terms = TermsVersionFactory(version="2026.1")
    user = UserFactory(email="noor@example.com", password=PASSWORD)
    member = MemberFactory(user=user, email="noor@example.com", language=language)
    member.terms_acceptances.create(terms_version=terms)
    page = new_page(language, width)

    fail(page, live_server)
    page.locator("#error-summary").wait_for()
    page.wait_for_load_state("load")  # the summary's deferred script has run

    assert focused_id(page) == "error-summary"
    assert page.get_by_role("alert").count() == 1
    assert page.evaluate(BROKEN_DESCRIPTIONS) == []
    shot(page, f"{fail.__name__.removeprefix('_fail_')}-errors-{language}-{width}")
    assert serious_violations(page) == []
