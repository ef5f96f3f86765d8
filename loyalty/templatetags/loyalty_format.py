"""`{% load loyalty_format %}`: `{{ amount|money }}` and `{{ count|points }}` in the page's language.

`money` writes euros with two decimals (`money:0` whole euros) ("€ 14.090,15" in Dutch, "€14,090.15" in English),
`points` a whole number with thousands separators ("2.936" / "2,936"): use `points` for every
count people read (points, members, purchases). A value that is not a number comes back as ""
so `|default:"—"` can follow.
"""

from django import template

from loyalty.formats import money_text, points_text

register = template.Library()


@register.filter(is_safe=True)
def money(value, decimals=2) -> str:
    """`{{ amount|money }}`, or `{{ amount|money:0 }}` for whole euros."""
    try:
        return money_text(value, decimals=int(decimals))
    except (TypeError, ValueError):
        return money_text(value)


@register.filter(is_safe=True)
def points(value) -> str:
    return points_text(value)
