"""`{% load loyalty_colours %}`: colours a program manager chose, made readable on the page.

Tier and house-style colours are free text in the admin ("#d4a017", "#fff", or a typo), so a
template never puts white text on them blindly. `{% colour_vars "--tier" tier.color %}` writes
`--tier: #d4a017; --tier-ink: #000000` for a style attribute or a `:root` rule: the colour,
normalised (an unusable value becomes the default), and the ink to write on it, black or
white, whichever contrasts more. By WCAG 2's relative luminance the better of the two is at
least 4.58:1 for every colour, enough for normal-size text.
"""

from __future__ import annotations

import re

from django import template

register = template.Library()

BLACK = "#000000"
WHITE = "#ffffff"
HEX_COLOUR = re.compile(r"#?(?P<digits>[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def hex_colour(value: object, default: str) -> str:
    """`value` as "#rrggbb" (from "#rgb", "#rrggbb", with or without "#"), else `default`."""
    match = HEX_COLOUR.fullmatch(str(value or "").strip())
    if match is None:
        return default
    digits = match["digits"].lower()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return f"#{digits}"


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a "#rrggbb" colour (0 black .. 1 white)."""
    channels = []
    for start in (1, 3, 5):
        value = int(colour[start : start + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two "#rrggbb" colours, 1 to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_ink(background: str) -> str:
    """Black or white, whichever text colour contrasts more with `background` ("#rrggbb")."""
    if contrast_ratio(background, BLACK) > contrast_ratio(background, WHITE):
        return BLACK
    return WHITE


@register.simple_tag
def colour_vars(name: str, value: object, default: str = "#8c8c8c") -> str:
    """CSS custom properties `<name>` (the colour) and `<name>-ink` (text to write on it)."""
    colour = hex_colour(value, hex_colour(default, "#8c8c8c"))
    return f"{name}: {colour}; {name}-ink: {readable_ink(colour)}"
