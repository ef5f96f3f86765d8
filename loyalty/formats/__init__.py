"""Money and points as people read them, in the active language's number format.

The per-language modules beside this file (FORMAT_MODULE_PATH) give the separators: "." and ","
in English, Django's "," and "." in Dutch. The helpers here add the euro sign where each
language puts it and always group thousands: grouping is forced per value instead of switched
on project-wide with USE_THOUSAND_SEPARATOR, so ids in URLs, form values and the admin's object
links stay plain digits. Templates use them through `{% load loyalty_format %}`; Python code
that writes text for people (messages, e-mails, CSV for people) calls them directly.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.formats import number_format
from django.utils.translation import get_language


def _decimal(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def money_text(value, decimals: int = 2) -> str:
    """'€ 14.090,15' in Dutch, '€14,090.15' in English ('€ 14.090' with decimals=0); '' for
    no value or not a number. The Dutch space is a no-break space: the sign never ends a line."""
    amount = _decimal(value)
    if amount is None:
        return ""
    amount = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    negative = amount < 0
    digits = number_format(abs(amount), decimal_pos=decimals, force_grouping=True)
    if (get_language() or "").startswith("nl"):
        return f"€\u00a0-{digits}" if negative else f"€\u00a0{digits}"
    return f"-€{digits}" if negative else f"€{digits}"


def points_text(value) -> str:
    """A whole number with thousands separators: '2.936' in Dutch, '2,936' in English."""
    number = _decimal(value)
    if number is None:
        return ""
    whole = int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return number_format(whole, force_grouping=True)


def factor_text(value) -> str:
    """A multiplier or rate as written by hand: '1,5' in Dutch, '1.5' in English, '2' for 2.00;
    '' for no value."""
    number = _decimal(value)
    if number is None:
        return ""
    number = number.normalize()
    places = max(-number.as_tuple().exponent, 0)  # type: ignore[operator]
    return number_format(number, decimal_pos=places, force_grouping=True)


def fraction_points_text(value, decimals: int = 2) -> str:
    """Points before rounding down, e.g. a line's share: '14,88' in Dutch, '14.88' in English."""
    number = _decimal(value)
    if number is None:
        return ""
    return number_format(
        number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP),
        decimal_pos=decimals,
        force_grouping=True,
    )
