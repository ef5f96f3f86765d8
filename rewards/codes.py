"""Voucher codes: unguessable, readable aloud, with a check character. Pure Python.

Ten random characters from an alphabet without look-alikes (no 0/O, 1/I/L) give 31^10 ≈ 8·10^14
codes; an eleventh character is a Luhn mod 31 check, so a mistyped code is refused before any
database lookup. Shown in groups of four ("ABCD-EFGH-JKL").
"""

from __future__ import annotations

import secrets

from stdnum import luhn

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 characters
BODY_LENGTH = 10


def generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + luhn.calc_check_digit(body, alphabet=ALPHABET)


def normalise(text: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes."""
    return "".join(text.upper().split()).replace("-", "")


def is_well_formed(code: str) -> bool:
    """Our generated format with a correct check character (imported codes are not checked)."""
    return (
        len(code) == BODY_LENGTH + 1
        and all(character in ALPHABET for character in code)
        and luhn.is_valid(code, alphabet=ALPHABET)
    )


def display(code: str) -> str:
    return "-".join(code[index : index + 4] for index in range(0, len(code), 4))
