"""Ledger reasons: what an entry is, stored as a message key with parameters and put into words
in the language of whoever reads it (the member in the portal, staff in the admin and the API).

A reason the system writes is a `Reason`: the untranslated msgid (marked with gettext_noop so
makemessages finds it) and its parameters. A parameter that differs per language (a reward's
name) is stored as {"nl": ..., "en": ...} and read in the reader's language. The entry's `reason`
column keeps the text in the program's default language for exports and search; text typed by
staff has no key and is shown as typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

PURCHASE = gettext_noop("Purchase %(id)s")
REFUND = gettext_noop("Refund of purchase %(id)s")
POINTS_EXPIRED = gettext_noop("Points expired")
REWARD = gettext_noop("Reward: %(reward)s")
REWARD_CANCELLED = gettext_noop("Cancelled reward: %(reward)s")
# A campaign's bonus offer (params: campaign, campaign_id), and its reversal by a refund.
CAMPAIGN_BONUS = gettext_noop("Bonus: %(campaign)s")
BIRTHDAY = gettext_noop("Birthday points")

# Every key the system writes; a key not listed here (an older release's) is shown as stored.
KEYS = frozenset(
    {PURCHASE, REFUND, POINTS_EXPIRED, REWARD, REWARD_CANCELLED, CAMPAIGN_BONUS, BIRTHDAY}
)


@dataclass(frozen=True)
class Reason:
    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def text(self) -> str:
        """The reason in the active language."""
        return reason_render(self.key, dict(self.params))

    def stored_text(self) -> str:
        """The reason in the program's default language, for the entry's `reason` column."""
        with translation.override(settings.LANGUAGE_CODE):
            return self.text()


def per_language(**texts: str) -> dict[str, str]:
    """A parameter with a text per language code, e.g. per_language(nl="Korting", en="Discount")."""
    return {code: text for code, text in texts.items() if text}


def _in_language(value: object, language: str) -> object:
    if not isinstance(value, Mapping):
        return value
    for code in (language, language.split("-")[0], settings.LANGUAGE_CODE):
        if value.get(code):
            return value[code]
    return next((text for text in value.values() if text), "")


def reason_render(key: str, params: Mapping[str, object] | None, fallback: str = "") -> str:
    """The reason `key` with `params` in the active language; `fallback` (the stored text) for
    no key, a key this release does not know, or parameters that do not fit it."""
    if not key or key not in KEYS:
        return fallback
    language = translation.get_language() or settings.LANGUAGE_CODE
    values = {name: _in_language(value, language) for name, value in (params or {}).items()}
    try:
        return gettext(key) % values if values else gettext(key)
    except (KeyError, TypeError, ValueError):
        return fallback
