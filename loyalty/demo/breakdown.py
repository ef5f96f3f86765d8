"""Each demo purchase's `earning_breakdown`, as the earning rules would have written it.

The JSON has the shape of `loyalty.earning.EarningBreakdown.as_dict()` with the same texts
(`str()` of the Decimals the service multiplies), built for many purchases at once with numpy:
every value goes right-aligned into a slot of fixed width, padded with the spaces JSON allows
between tokens, so all rows are one width and become one numpy bytes array (what
`pgcopy.copy_binary` writes without a Python string per row; jsonb drops the padding). A
purchase with fewer lines than the widest one leaves the other line slots blank.

Decimal texts follow Decimal's own scale rule: the scale of a product is the sum of its
factors' scales, and a factor of "no rule" or "no tier" is Decimal("1"), of scale 0. The line
points are computed exactly in integers at scale 8 (cents x 3 factors in hundredths).
"""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np

SPACE, QUOTE = ord(" "), ord('"')
SCALE = 8  # cents (2) x points per euro (2) x rule multiplier (2) x tier multiplier (2)


def hundredths(value: Decimal) -> int:
    """A DecimalField value with two decimals as whole hundredths."""
    return int(value.quantize(Decimal("0.01")) * 100)


def line_points_exact(
    cents: np.ndarray, *, base_hundredths: int, rule_hundredths, tier_hundredths
) -> np.ndarray:
    """Line points x 10^8, exactly: what the service's Decimal product is, in integers."""
    return (
        cents.astype(np.int64)
        * base_hundredths
        * np.asarray(rule_hundredths, dtype=np.int64)
        * np.asarray(tier_hundredths, dtype=np.int64)
    )


def _texts(values: list[str | None]) -> list[bytes]:
    return [json.dumps(value).encode() if value is not None else b"null" for value in values]


def _choice(codes: np.ndarray, texts: list[bytes]) -> np.ndarray:
    """texts[code] per row (-1: the last), right-aligned in one width: a bytes array."""
    width = max(len(text) for text in texts)
    table = np.array([b" " * (width - len(text)) + text for text in texts], dtype=f"S{width}")
    return table[codes]


def _digit_count(values: np.ndarray) -> np.ndarray:
    count = np.ones(len(values), dtype=np.int64)
    remaining = values // 10
    while (remaining > 0).any():
        count += remaining > 0
        remaining //= 10
    return count


def _number(values: np.ndarray, scale: np.ndarray | int, *, quoted: bool) -> np.ndarray:
    """Non-negative integers `values` shown with `scale` decimals (per row), right-aligned:
    the text of Decimal(values).scaleb(-scale), in quotes when `quoted`; a bytes array."""
    values = np.asarray(values, dtype=np.int64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.int64), values.shape)
    digits = np.maximum(_digit_count(values), scale + 1)  # 0.50: a zero before the point
    length = digits + (scale > 0) + 2 * quoted
    width = int(length.max(initial=1))
    # Built one character position at a time (contiguous rows of a (width, rows) buffer).
    columns = np.full((width, len(values)), SPACE, dtype=np.uint8)
    remaining = values.copy()
    position = width - 1
    if quoted:
        columns[position] = QUOTE
        position -= 1
    for offset in range(width - quoted):
        point = (scale > 0) & (offset == scale)
        inside = (offset - (scale > 0) * (offset > scale)) < digits
        char = np.where(inside, ord("0") + remaining % 10, SPACE).astype(np.uint8)
        remaining = np.where(point, remaining, remaining // 10)
        char[point] = ord(".")
        if quoted:
            char[~inside & (offset == length - 2)] = QUOTE
        columns[position - offset] = char
        if position - offset == 0:
            break
    return np.ascontiguousarray(columns.T).view(f"S{width}").ravel()


def _join(parts: list[bytes | np.ndarray], rows: int) -> np.ndarray:
    """The parts side by side per row (bytes: the same for every row): one bytes array."""
    widths = [len(part) if isinstance(part, bytes) else part.dtype.itemsize for part in parts]
    joined = np.empty(rows, dtype=[(f"f{i}", f"S{w}") for i, w in enumerate(widths) if w])
    for index, part in enumerate(parts):
        if widths[index]:
            joined[f"f{index}"] = part
    return joined.view(f"S{sum(widths)}")


def breakdown_json(
    *,
    base_rate: Decimal,
    tier: np.ndarray,
    tier_names: list[str],
    tier_multipliers: list[Decimal],
    points: np.ndarray,
    line_owner: np.ndarray,
    line_cents: np.ndarray,
    line_category: np.ndarray,
    categories: list[str],
    line_rule: np.ndarray,
    rule_names: list[str],
    rule_multipliers: list[Decimal],
    prefix: bytes = b"",
) -> np.ndarray:
    """The breakdown of each purchase as JSON, one numpy bytes array (all rows one width).

    Per purchase: `tier` (index into tier_names, -1 none) and `points`; per line (sorted by
    purchase, `line_owner` its index): cents, category (index, -1 none), rule (index into
    rule_names, -1 none). `prefix` goes before each text (jsonb's binary version byte).
    """
    count = len(points)
    base_h = hundredths(base_rate)
    tier_h = np.array([hundredths(value) for value in tier_multipliers] + [100], dtype=np.int64)
    rule_h = np.array([hundredths(value) for value in rule_multipliers] + [100], dtype=np.int64)
    line_tier = tier[line_owner]
    exact = line_points_exact(
        line_cents,
        base_hundredths=base_h,
        rule_hundredths=rule_h[line_rule],
        tier_hundredths=tier_h[line_tier],
    )
    # Scale of each line's points: cents and base rate 2 each, a rule or a tier 2 more each.
    scale = 4 + 2 * (line_rule >= 0) + 2 * (line_tier >= 0)
    line_points = exact // np.power(10, SCALE - scale)
    lines = _join(
        [
            b'{"amount":',
            _number(line_cents, 2, quoted=True),
            b',"category":',
            _choice(line_category, _texts([*categories, ""])),
            b',"rule":',
            _choice(line_rule, _texts([*rule_names, None])),
            b',"rule_multiplier":',
            _choice(line_rule, _texts([*(str(m) for m in _two(rule_multipliers)), "1"])),
            b',"points":',
            _number(line_points, scale, quoted=True),
            b"}",
        ],
        len(line_owner),
    )
    # Line slots: the n-th line of each purchase in slot n, a comma before all but the first.
    first = np.r_[0, np.flatnonzero(np.diff(line_owner)) + 1] if len(line_owner) else line_owner
    rank = np.arange(len(line_owner)) - np.repeat(first, np.diff(np.r_[first, len(line_owner)]))
    if len(line_owner) == count:  # one line each (benchmark volume): no slots to fill
        slots = [lines]
    else:
        slots = []
        width = lines.dtype.itemsize
        for slot in range(int(rank.max(initial=0)) + 1):
            chosen = rank == slot
            block = np.full(count, b" " * (width + (slot > 0)), dtype=f"S{width + (slot > 0)}")
            block[line_owner[chosen]] = np.char.add(b"," if slot else b"", lines[chosen])
            slots.append(block)
    text = _join(
        [
            prefix,
            b'{"base_rate":' + _texts([str(_two([base_rate])[0])])[0] + b',"tier":',
            _choice(tier, _texts([*tier_names, None])),
            b',"tier_multiplier":',
            _choice(tier, _texts([*(str(m) for m in _two(tier_multipliers)), "1"])),
            b',"lines":[',
            *slots,
            b'],"points":',
            _number(points, 0, quoted=False),
            b',"bonuses":[]}',
        ],
        count,
    )
    return text


def _two(values: list[Decimal]) -> list[Decimal]:
    """As a DecimalField with two decimals gives them back from the database."""
    return [value.quantize(Decimal("0.01")) for value in values]
