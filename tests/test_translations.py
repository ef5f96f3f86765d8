"""The Dutch translation is complete and compiled."""

from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale" / "nl" / "LC_MESSAGES"


def test_every_dutch_message_is_translated():
    catalogue = polib.pofile(str(LOCALE / "django.po"))

    untranslated = [entry.msgid for entry in catalogue.untranslated_entries()]
    fuzzy = [entry.msgid for entry in catalogue.fuzzy_entries()]

    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalogue_matches_the_source():
    source = polib.pofile(str(LOCALE / "django.po"))
    compiled = polib.mofile(str(LOCALE / "django.mo"))

    compiled_ids = {entry.msgid for entry in compiled}
    assert {entry.msgid for entry in source.translated_entries()} <= compiled_ids


def test_every_string_of_the_admins_javascript_has_dutch():
    """Django 5.2's admin JavaScript asks for strings its own Dutch catalogue lacks ("Choose all
    %s" under every two-list selector); locale/nl/LC_MESSAGES/djangojs.po adds them."""
    import re

    import django

    admin = Path(django.__file__).parent / "contrib" / "admin"
    translated = set()
    for catalogue in (
        admin / "locale" / "nl" / "LC_MESSAGES" / "djangojs.po",
        LOCALE / "djangojs.po",
    ):
        translated |= {entry.msgid for entry in polib.pofile(str(catalogue)).translated_entries()}
    asked = set()
    for script in (admin / "static" / "admin" / "js").glob("*.js"):
        asked |= set(re.findall(r"\bgettext\(\s*'((?:[^'\\]|\\.)*)'", script.read_text()))

    assert "Choose all %s" in asked  # the scan finds the strings
    assert sorted(asked - translated) == []


def test_the_admins_javascript_catalogue_is_dutch(admin_client, settings):
    settings.LANGUAGE_CODE = "nl"
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "nl"

    catalogue = admin_client.get("/admin/jsi18n/").content.decode()

    assert '"Choose all %s": "Alle %s kiezen"' in catalogue
