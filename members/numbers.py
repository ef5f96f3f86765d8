"""Member numbers: 12 digits, 11 of them random (unguessable) and a Luhn check digit."""

import secrets

from stdnum import luhn

MEMBER_NUMBER_LENGTH = 12


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn.is_valid(number)


def member_number_generate() -> str:
    # First digit 1-9 so the number never loses a leading zero on a printed card or in Excel.
    body = str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(MEMBER_NUMBER_LENGTH - 2)
    )
    return body + luhn.calc_check_digit(body)
