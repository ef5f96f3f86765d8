"""Text on a colour the program manager chose is always readable (WCAG 2 contrast)."""

import itertools

import pytest
from django.template import Context, Template

from loyalty.demo.generate import TIERS
from loyalty.templatetags.loyalty_colours import (
    contrast_ratio,
    hex_colour,
    readable_ink,
)


def test_every_colour_the_admin_allows_gets_an_ink_with_at_least_aa_contrast():
    # Every "#rgb" colour, and the corners in between, of the free-text colour field.
    steps = "0123456789abcdef"
    colours = [f"#{r}{g}{b}" for r, g, b in itertools.product(steps, repeat=3)]
    colours += [f"#{r}0{g}0{b}0" for r, g, b in itertools.product("0369cf", repeat=3)]
    worst = min(contrast_ratio(hex_colour(c, ""), readable_ink(hex_colour(c, ""))) for c in colours)
    assert worst >= 4.5


@pytest.mark.parametrize(("name", "colour"), [(tier[0], tier[4]) for tier in TIERS])
def test_the_demo_tiers_get_text_with_at_least_aa_contrast(name, colour):
    assert contrast_ratio(colour, readable_ink(colour)) >= 4.5, name


def test_gold_gets_black_text_and_a_dark_green_white_text():
    assert readable_ink("#d4a017") == "#000000"
    assert readable_ink("#0b5c4a") == "#ffffff"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#D4A017", "#d4a017"),
        ("fa0", "#ffaa00"),
        (" #abc ", "#aabbcc"),
        ("red", "#8c8c8c"),
        ("#12345", "#8c8c8c"),
        ("", "#8c8c8c"),
        (None, "#8c8c8c"),
        ("#fff;}body{display:none", "#8c8c8c"),
    ],
)
def test_a_colour_is_normalised_or_replaced_by_the_default(value, expected):
    assert hex_colour(value, "#8c8c8c") == expected


def test_the_template_tag_writes_the_colour_and_its_ink():
    template = Template('{% load loyalty_colours %}{% colour_vars "--tier" colour %}')
    assert template.render(Context({"colour": "#D4A017"})) == "--tier: #d4a017; --tier-ink: #000000"
    assert template.render(Context({"colour": "nonsense"})) == (
        "--tier: #8c8c8c; --tier-ink: #000000"
    )
