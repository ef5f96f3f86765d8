"""Member numbers: 12 digits, 11 of them random (unguessable) and a Luhn check digit."""

import secrets

MEMBER_NUMBER_LENGTH = 12


def luhn_check_digit(digits: str) -> str:
    total = 0
    # Walk from the right; the digit next to the (future) check digit is doubled.
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def member_number_generate() -> str:
    # First digit 1-9 so the number never loses a leading zero on a printed card or in Excel.
    body = str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(MEMBER_NUMBER_LENGTH - 2)
    )
    return body + luhn_check_digit(body)
