"""The purchase model in a run: chosen in the settings, P(alive) of one-time buyers in the
segments, and degenerate fits shown on the run page."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from django.utils import translation

from loyalty import demo
from segmentation import clv, services
from segmentation.models import (
    PurchaseModel,
    RunStatus,
    SegmentationRun,
    SegmentationSettings,
)
from segmentation.pipeline import Parameters, compute_scores

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def population(seed: int = 14, count: int = 1500) -> tuple[pd.DataFrame, np.ndarray]:
    """A purchase aggregate (run_inputs.purchase_aggregates' columns) of customers who buy as
    MBG/NBD says, in days: a purchase every 75 days on average while active, a 25% chance on
    average of dropping out right after any purchase, the first one included; first purchases
    up to two years ago, a one-year RFM window. Also returns who is in fact still active."""
    rng = np.random.default_rng(seed)
    rows, active = [], []
    for member_id in range(1, count + 1):
        rate, dropout = rng.gamma(0.8, 1 / 60), rng.beta(1.0, 3.0)
        age = rng.uniform(5, 730)
        times = [0.0]  # days since the first purchase
        still_active = False
        while rng.random() >= dropout:
            following = times[-1] + rng.exponential(1 / rate)
            if following > age:
                still_active = True
                break
            times.append(following)
        active.append(still_active)
        days_ago = age - np.array(times)
        amounts = 35.0 * rng.gamma(4.0, 0.25) * rng.gamma(4.0, 0.25, len(times))
        recent = days_ago <= 365
        rows.append(
            (
                member_id,
                days_ago.min(),
                int(recent.sum()),
                float(amounts[recent].sum()),
                len(times),
                float(amounts.sum()),
                age,
                float(amounts[0]),
            )
        )
    aggregates = pd.DataFrame(
        rows,
        columns=[
            "member_id",
            "days_since_last",
            "frequency",
            "monetary",
            "purchases_total",
            "spend_total",
            "days_since_first",
            "first_spend",
        ],
    )
    return aggregates, np.array(active)


def test_the_choices_are_the_models_clv_implements():
    assert set(PurchaseModel.values) == set(clv.PURCHASE_MODELS)
    assert SegmentationSettings().clv_purchase_model == PurchaseModel.MBGNBD
    assert Parameters().purchase_model == "mbgnbd"


def test_with_mbgnbd_one_time_and_hibernating_members_are_less_alive_than_champions():
    aggregates, active = population()
    members = aggregates["member_id"]

    scores, info = compute_scores(aggregates, members, Parameters())
    classic, classic_info = compute_scores(aggregates, members, Parameters(purchase_model="bgnbd"))

    assert info["clv_parameters"]["purchase_model"] == "mbgnbd"
    assert classic_info["clv_parameters"]["purchase_model"] == "bgnbd"
    alive = scores.groupby("segment")["p_alive"].mean()
    classic_alive = classic.groupby("segment")["p_alive"].mean()
    once = (aggregates["purchases_total"] == 1).to_numpy()
    truth = pd.Series(active).groupby(scores["segment"]).mean()
    # BG/NBD: every one-time buyer is certainly alive, so the sleeping segments look healthy.
    assert (classic.loc[once, "p_alive"] == 1).all()
    assert classic_alive["hibernating"] > truth["hibernating"] + 0.3
    # MBG/NBD: near the share of members still active, one-time buyers and hibernating alike.
    assert active[once].mean() < 0.5
    assert abs(scores.loc[once, "p_alive"].mean() - active[once].mean()) < 0.1
    assert abs(alive["hibernating"] - truth["hibernating"]) < 0.1
    assert alive["hibernating"] < alive["champions"] - 0.25
    assert info["clv_parameters"]["warnings"] == []
    one_timers = scores.loc[once].assign(days=aggregates.loc[once, "days_since_first"].to_numpy())
    assert one_timers.sort_values("days")["p_alive"].is_monotonic_decreasing
    assert (scores["clv"] >= 0).all()


@pytest.fixture
def demo_program(db):
    demo.seed(demo.DemoSpec(members=300, lines=False, now=NOW))


def test_a_run_fits_the_model_the_settings_choose(demo_program):
    default = services.recalculate(now=NOW)
    settings = SegmentationSettings.load()
    settings.clv_purchase_model = PurchaseModel.BGNBD
    settings.save()
    classic = services.recalculate(now=NOW + dt.timedelta(hours=1))

    assert default.status == classic.status == RunStatus.DONE, (default.error, classic.error)
    fitted, classic_fitted = (run.parameters["clv_parameters"] for run in (default, classic))
    assert fitted["purchase_model"] == "mbgnbd"
    assert set(fitted["mbgnbd"]) == {"r", "alpha", "a", "b"}
    assert classic_fitted["purchase_model"] == "bgnbd"
    assert set(classic_fitted["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert isinstance(fitted["warnings"], list)


def test_the_settings_page_offers_the_purchase_model_with_advice(admin_client, db):
    url = reverse("admin:segmentation_segmentationsettings_change", args=[1])
    SegmentationSettings.load()

    with translation.override("en"):
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    content = page.content.decode()

    assert 'name="clv_purchase_model"' in content
    assert "MBG/NBD suits most programs" in content
    assert "choose it only to compare" in content


def test_choosing_bgnbd_in_the_settings_is_saved_and_a_wrong_value_is_refused(admin_client, db):
    url = reverse("admin:segmentation_segmentationsettings_change", args=[1])
    SegmentationSettings.load()
    form = admin_client.get(url).context["adminform"].form
    # What the browser would send back unchanged (BoundField.value() is the prepared value).
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}

    refused = admin_client.post(url, {**data, "clv_purchase_model": "pareto"})
    assert refused.status_code == 200
    assert "clv_purchase_model" in refused.context["adminform"].form.errors
    assert SegmentationSettings.load().clv_purchase_model == "mbgnbd"

    saved = admin_client.post(url, {**data, "clv_purchase_model": "bgnbd"})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert SegmentationSettings.load().clv_purchase_model == "bgnbd"


DEGENERATE = {
    "purchase_model": "mbgnbd",
    "mbgnbd": {"r": 1.345, "alpha": 66.77, "a": 0.1627, "b": 0.8055},
    "gamma_gamma": {"p": 2954326.2, "q": 1.763, "v": 1.838e-05},
    "warnings": [
        {"model": "gamma_gamma", "code": "not_converged"},
        {
            "model": "gamma_gamma",
            "code": "too_large",
            "parameter": "p",
            "value": 2954326.2,
            "limit": 100.0,
        },
    ],
}


def finished_run(clv_parameters: dict) -> SegmentationRun:
    return SegmentationRun.objects.create(
        status=RunStatus.DONE,
        started_at=NOW - dt.timedelta(seconds=42),
        finished_at=NOW,
        stage="done",
        progress=100,
        parameters={"members": 10, "with_purchases": 8, "clv_parameters": clv_parameters},
    )


def test_the_run_page_warns_about_a_degenerate_fit_with_its_parameters(admin_client, db):
    run = finished_run(DEGENERATE)
    url = reverse("admin:segmentation_segmentationrun_change", args=[run.pk])

    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'class="clv-fit-warning" role="alert"' in english
    assert "The CLV models did not fit this run" in english
    assert "Gamma-Gamma (spend per purchase)" in english
    assert "p\u00a0=\u00a02,954,326; q\u00a0=\u00a01.763; v\u00a0=\u00a00.00001838" in english
    assert "The optimiser stopped before it converged" in english
    assert "p = 2,954,326 is above 100: the amounts of a member&#x27;s purchases" in english
    assert "This affects expected spend, CLV and the profitability side" in english


def test_the_run_page_has_no_warning_when_the_fits_are_sound(admin_client, db):
    run = finished_run({**DEGENERATE, "warnings": []})

    page = admin_client.get(reverse("admin:segmentation_segmentationrun_change", args=[run.pk]))

    assert page.status_code == 200
    assert "clv-fit-warning" not in page.content.decode()
