"""How runs, settings and exports are shown to people: keys as labels and numbers in the reader's
language. The run keeps keys and plain numbers (parameters JSON, stage key); these functions turn
them into what the run page and the CSV export show, in the language active for the request."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.utils import formats, numberformat
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from .models import FrequencyScoring, Quadrant, Segment

# What pipeline.compute_scores records when it does not fit the CLV models (pure code: no
# translation there), as the run page says it.
CLV_SKIPPED = {
    "too few customers with repeat purchases": _(
        "Not fitted: too few customers with repeat purchases. CLV and P(alive) stay empty and "
        "every member is a stranger in the matrix."
    ),
}

CLV_MODEL_LABELS = {
    "bgnbd": _("BG/NBD (purchases and P(alive))"),
    "mbgnbd": _("MBG/NBD (purchases and P(alive))"),
    "gamma_gamma": _("Gamma-Gamma (spend per purchase)"),
}


def number(value: float | int | None, decimals: int = 0) -> str:
    """A number with the language's decimal and thousands separators ("—" for none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return formats.number_format(value, decimals, use_l10n=True, force_grouping=True)


def significant(value: float | int | None, digits: int = 4) -> str:
    """A fitted parameter with `digits` significant digits (0.2426, 4.414, 2,600,000)."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "—" if value is None else str(value)
    if value == 0:
        return number(0)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return number(round(value, decimals), min(decimals, 8))


def frequency_bands_text(bands: Iterable[int]) -> str:
    """Bands as purchase counts per score: [1, 2, 3, 5, 10] -> "1 / 2 / 3-4 / 5-9 / 10+"."""
    lows = list(bands)
    parts = []
    for index, low in enumerate(lows):
        if index == len(lows) - 1:
            parts.append(f"{number(low)}+")
        elif lows[index + 1] - 1 == low:
            parts.append(number(low))
        else:
            parts.append(f"{number(low)}-{number(lows[index + 1] - 1)}")
    return " / ".join(parts)


@dataclass(frozen=True)
class Row:
    label: str
    value: str


def scoring_rows(parameters: dict) -> list[Row]:
    """How the run scored: window, scale, frequency scoring (and its bands), as of when."""
    rows = []
    if "window_days" in parameters:
        rows.append(Row(str(_("RFM window (days)")), number(parameters["window_days"])))
    if "scale" in parameters:
        rows.append(Row(str(_("Score scale")), f"1-{number(parameters['scale'])}"))
    method = parameters.get("frequency_scoring", FrequencyScoring.QUANTILES)
    label = FrequencyScoring(method).label if method in FrequencyScoring.values else method
    rows.append(Row(str(_("Frequency scoring")), str(label)))
    if parameters.get("frequency_bands"):
        rows.append(
            Row(
                str(_("Purchases per F score (1 up)")),
                frequency_bands_text(parameters["frequency_bands"]),
            )
        )
    return rows


def count_rows(parameters: dict) -> list[Row]:
    """How many members the run scored, had purchases, and fell in each rule-based segment."""
    rows = []
    if "members" in parameters:
        rows.append(Row(str(_("Members scored")), number(parameters["members"])))
    if "with_purchases" in parameters:
        rows.append(Row(str(_("Members with purchases")), number(parameters["with_purchases"])))
    for name, count in (parameters.get("rule_segments") or {}).items():
        rows.append(Row(str(_("Rule-based segment “%(name)s”") % {"name": name}), number(count)))
    return rows


def threshold_rows(parameters: dict, money) -> list[Row]:
    """The matrix thresholds the run used (set in the settings or the run's medians)."""
    thresholds = parameters.get("thresholds") or {}
    rows = []
    if "loyalty" in thresholds:
        rows.append(
            Row(
                str(_("Loyal from (expected purchases in the horizon)")),
                number(thresholds["loyalty"], 2),
            )
        )
    if "profitability" in thresholds:
        value = thresholds["profitability"]
        rows.append(Row(str(_("Profitable from (CLV)")), "—" if value is None else money(value)))
    return rows


def clv_model_rows(parameters: dict) -> list[tuple[str, list[Row]]]:
    """Each fitted CLV model with its parameters; [] when the run did not fit them."""
    fitted = parameters.get("clv_parameters") or {}
    models = []
    for model, values in fitted.items():
        if not isinstance(values, dict):
            continue
        label = str(CLV_MODEL_LABELS.get(model, model))
        models.append((label, [Row(name, significant(value)) for name, value in values.items()]))
    return models


def clv_skipped_text(parameters: dict) -> str | None:
    reason = parameters.get("clv_skipped")
    if not reason:
        return None
    return str(CLV_SKIPPED.get(reason, reason))


# What each clv.fit_warnings code means for the run's figures, as the run page says it.
CLV_WARNINGS = {
    "not_converged": _(
        "The optimiser stopped before it converged: these parameters may not be the best fit."
    ),
    "at_bound": _(
        "%(parameter)s = %(value)s is at the edge of the search range: the data push it towards "
        "zero or infinity, which this model cannot describe."
    ),
    ("too_large", "p"): _(
        "p = %(value)s is above %(limit)s: the amounts of a member's purchases hardly vary, so "
        "the model cannot tell a member's own average from chance. Expected spend per purchase "
        "is then about each member's own average."
    ),
    ("too_large", "q"): _(
        "q = %(value)s is above %(limit)s: the average spend hardly differs from one member to "
        "the next. Expected spend per purchase is then about the average of all members."
    ),
    "no_mean_spend": _(
        "q = %(value)s is 1 or less, so the model's average spend per purchase is infinite. "
        "Members without repeat purchases get the observed average repeat spend instead."
    ),
}


# Which of the run's figures a bad fit of each model affects.
CLV_AFFECTS = {
    "gamma_gamma": _("This affects expected spend, CLV and the profitability side of the matrix."),
    "purchases": _("This affects expected purchases, P(alive), CLV and both sides of the matrix."),
}


@dataclass(frozen=True)
class ClvFitWarning:
    model: str  # the model's label
    fitted: str  # its parameters, "p = 2,954,000; q = 1.763; v = 0.00001838" (";": nl has 1,763)
    messages: list[str]
    affects: str


def clv_fit_warnings(parameters: dict) -> list[ClvFitWarning]:
    """The run's degenerate CLV fits (clv.fit_warnings), per model: what is wrong and what it
    means, with the fitted parameters; [] when the fits are sound or were not made."""
    fitted = parameters.get("clv_parameters") or {}
    by_model: dict[str, list[str]] = {}
    for warning in fitted.get("warnings") or []:
        code, parameter = warning.get("code"), warning.get("parameter")
        text = CLV_WARNINGS.get((code, parameter)) or CLV_WARNINGS.get(code)
        values = {
            "parameter": parameter,
            "value": significant(warning.get("value")),
            "limit": number(warning.get("limit")),
        }
        message = str(text) % values if text else str(code)
        by_model.setdefault(warning.get("model", ""), []).append(message)
    result = []
    for model, messages in by_model.items():
        values = fitted.get(model) if isinstance(fitted.get(model), dict) else {}
        result.append(
            ClvFitWarning(
                model=str(CLV_MODEL_LABELS.get(model, model)),
                fitted="; ".join(  # no line break inside "q = 1,763"
                    f"{name}\u00a0=\u00a0{significant(value)}" for name, value in values.items()
                ),
                messages=messages,
                affects=str(CLV_AFFECTS["gamma_gamma" if model == "gamma_gamma" else "purchases"]),
            )
        )
    return result


# --- the segment CSV export ----------------------------------------------------------------

# Columns for machines, named alike in every language, after the columns for people.
EXPORT_KEY_COLUMNS = ["segment_key", "quadrant_key", "language_key"]


def export_header() -> list[str]:
    return [
        str(_("member number")),
        str(_("e-mail")),
        str(_("first name")),
        str(_("last name")),
        str(_("language")),
        str(_("segment")),
        str(_("quadrant")),
        "R",
        "F",
        "M",
        str(_("days since last purchase")),
        str(_("purchases in window")),
        str(_("spend in window (EUR)")),
        str(_("customer lifetime value (EUR)")),
        "P(alive)",
        str(_("expected purchases (horizon)")),
        *EXPORT_KEY_COLUMNS,
    ]


def _plain(value: float | int | None, decimals: int) -> str:
    """A number with the language's decimal separator and no grouping, so that a spreadsheet
    in that language reads it as a number."""
    if value is None:
        return ""
    return numberformat.format(
        value, formats.get_format("DECIMAL_SEPARATOR"), decimals, grouping=0, thousand_sep=""
    )


def _language_name(code: str | None) -> str:
    if not code:
        return ""
    try:
        return str(get_language_info(code)["name_translated"])
    except KeyError:
        return code


def export_lines(rows: Iterable[tuple]) -> Iterator[list]:
    """selectors.export_rows' rows as the CSV shows them: labels and numbers in the active
    language, then the keys."""
    segments = {segment.value: str(segment.label) for segment in Segment}
    quadrants = {quadrant.value: str(quadrant.label) for quadrant in Quadrant}
    for (
        member_number,
        email,
        first_name,
        last_name,
        language,
        segment,
        quadrant,
        r_score,
        f_score,
        m_score,
        recency_days,
        frequency,
        monetary,
        clv,
        p_alive,
        expected_purchases,
    ) in rows:
        yield [
            member_number,
            email,
            first_name,
            last_name,
            _language_name(language),
            segments.get(segment, segment),
            quadrants.get(quadrant, quadrant),
            r_score,
            f_score,
            m_score,
            recency_days,
            frequency,
            _plain(monetary, 2),
            _plain(clv, 2),
            _plain(p_alive, 3),
            _plain(expected_purchases, 2),
            segment,
            quadrant,
            language or "",
        ]
