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
