"""Frequency scored by fixed purchase-count bands beside quantiles: scoring, settings, heat map."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.urls import reverse

from loyalty.models import Purchase
from segmentation import rfm, services
from segmentation.models import FrequencyScoring, MemberScore, SegmentationSettings
from segmentation.pipeline import Parameters, compute_scores
from segmentation.selectors import rf_heatmap
from tests.factories import MemberFactory, PartnerFactory

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)

# purchases in the window -> members: many one-time buyers, as loyalty programs have.
POPULATION = {1: 35, 2: 30, 3: 15, 6: 12, 12: 8}


def test_the_default_bands_score_1_2_3_to_4_5_to_9_and_10_up():
    counts = pd.Series([1, 2, 3, 4, 5, 9, 10, 57])

    assert list(rfm.band_scores(counts, rfm.DEFAULT_FREQUENCY_BANDS)) == [1, 2, 3, 3, 4, 4, 5, 5]


def test_bands_that_do_not_fit_the_scale_are_named():
    assert rfm.bands_problem([1, 2, 3, 5, 10], 5) is None
    assert rfm.bands_problem([1, 2, 3, 5], 5) == "count"
    assert rfm.bands_problem([2, 3, 4, 5, 10], 5) == "start"
    assert rfm.bands_problem([1, 3, 3, 5, 10], 5) == "order"
    assert rfm.bands_problem([1, 5, 3, 8, 10], 5) == "order"
    with pytest.raises(ValueError):
        rfm.band_scores(pd.Series([1, 2]), [1, 5, 3, 8, 10])


def test_with_bands_only_frequency_changes_recency_and_monetary_stay_quantiles():
    frame = pd.DataFrame(
        {
            "member_id": range(1, 11),
            "recency_days": range(10, 110, 10),
            "frequency": [1] * 4 + [2] * 3 + [4, 7, 11],
            "monetary": range(100, 1100, 100),
        }
    )

    by_quantile = rfm.score(frame)
    by_band = rfm.score(frame, frequency_bands=rfm.DEFAULT_FREQUENCY_BANDS)

    assert list(by_band["f_score"]) == [1, 1, 1, 1, 2, 2, 2, 3, 4, 5]
    assert list(by_quantile["f_score"]) != list(by_band["f_score"])
    assert list(by_band["r_score"]) == list(by_quantile["r_score"])
    assert list(by_band["m_score"]) == list(by_quantile["m_score"])
    with pytest.raises(ValueError):
        rfm.score(frame, scale=4, frequency_bands=rfm.DEFAULT_FREQUENCY_BANDS)


def test_the_pipeline_scores_f_by_the_bands_it_is_given():
    aggregates = pd.DataFrame(
        {
            "member_id": [1, 2, 3],
            "days_since_last": [3.0, 40.0, 200.0],
            "frequency": [1, 2, 12],
            "monetary": [20.0, 50.0, 600.0],
            "purchases_total": [1, 2, 12],
            "spend_total": [20.0, 50.0, 600.0],
            "days_since_first": [3.0, 90.0, 330.0],
            "first_spend": [20.0, 25.0, 50.0],
        }
    )

    scores, _info = compute_scores(
        aggregates, pd.Series([1, 2, 3]), Parameters(frequency_bands=(1, 2, 3, 5, 10))
    )

    assert list(scores["f_score"]) == [1, 2, 5]


@pytest.fixture
def one_time_buyers(db):
    """100 members in the window; a third bought once, and the twice-buyers tie on one count."""
    partner = PartnerFactory()
    purchases = []
    number = 0
    for count, members in POPULATION.items():
        for member in MemberFactory.create_batch(members):
            for index in range(count):
                number += 1
                purchases.append(
                    Purchase(
                        partner=partner,
                        member=member,
                        external_id=f"B{number:06d}",
                        amount=Decimal(20 + number % 37),
                        purchased_at=NOW - dt.timedelta(days=3 + (number * 7 + index) % 300),
                        store="Utrecht",
                    )
                )
    Purchase.objects.bulk_create(purchases)


def _column(heatmap: dict, f: int) -> int:
    return sum(
        cell["members"] for row in heatmap["rows"] for cell in row["cells"] if cell["f"] == f
    )


@pytest.mark.django_db
def test_quantiles_leave_the_f2_column_empty_with_many_one_time_buyers(one_time_buyers):
    run = services.recalculate(now=NOW)

    heatmap = rf_heatmap(run=run)
    assert _column(heatmap, 1) == 35 and _column(heatmap, 2) == 0  # the problem bands solve
    assert run.parameters["frequency_scoring"] == FrequencyScoring.QUANTILES


@pytest.mark.django_db
def test_with_bands_the_recalculation_fills_the_f2_column_of_the_heat_map(one_time_buyers):
    settings = SegmentationSettings.load()
    settings.frequency_scoring = FrequencyScoring.BANDS
    settings.save()

    run = services.recalculate(now=NOW)

    heatmap = rf_heatmap(run=run)
    assert [_column(heatmap, f) for f in range(1, 6)] == [35, 30, 15, 12, 8]
    assert run.parameters["frequency_scoring"] == "bands"
    assert run.parameters["frequency_bands"] == [1, 2, 3, 5, 10]
    twice = MemberScore.objects.filter(run=run, frequency=2)
    assert set(twice.values_list("f_score", flat=True)) == {2}


@pytest.mark.django_db
def test_edited_bands_are_what_the_recalculation_scores_by(one_time_buyers):
    settings = SegmentationSettings.load()
    settings.frequency_scoring = FrequencyScoring.BANDS
    settings.frequency_bands = [1, 3, 6, 12, 20]
    settings.save()

    run = services.recalculate(now=NOW)

    assert [_column(rf_heatmap(run=run), f) for f in range(1, 6)] == [65, 15, 12, 8, 0]


# --- the settings page ---------------------------------------------------------------------


def _settings_form_data(admin_client) -> dict:
    SegmentationSettings.load()  # the one row, as the settings list creates it
    url = reverse("admin:segmentation_segmentationsettings_change", args=[1])
    form = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        data[name] = field.prepare_value(value) if name == "frequency_bands" else value
    return data


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ("1, 2, 3, 5", "Give exactly 5 bands"),
        ("1, 2, 2, 5, 10", "must start at more purchases than the band before it"),
        ("1, 5, 3, 8, 10", "must start at more purchases than the band before it"),
        ("2, 3, 4, 6, 10", "The first band must start at 1 purchase"),
        ("1, 2, three, 5, 10", "Enter whole numbers separated by commas"),
    ],
)
def test_invalid_bands_are_a_form_error_and_change_nothing(admin_client, bands, message):
    data = _settings_form_data(admin_client)
    data.update(frequency_scoring="bands", frequency_bands=bands, window_days=200)

    response = admin_client.post(
        reverse("admin:segmentation_segmentationsettings_change", args=[1]),
        data,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in str(errors["frequency_bands"])
    saved = SegmentationSettings.load()
    assert saved.frequency_scoring == "quantiles" and saved.window_days == 365
    assert saved.frequency_bands == [1, 2, 3, 5, 10]


@pytest.mark.django_db
def test_the_band_count_follows_the_score_scale_only_when_bands_are_used(admin_client):
    url = reverse("admin:segmentation_segmentationsettings_change", args=[1])
    data = _settings_form_data(admin_client)

    data.update(frequency_scoring="bands", score_scale=4)
    refused = admin_client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
    data.update(frequency_scoring="quantiles")
    accepted = admin_client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")

    assert "Give exactly 4 bands" in str(refused.context["adminform"].form.errors)
    assert accepted.status_code == 302
    assert SegmentationSettings.load().score_scale == 4


@pytest.mark.django_db
def test_valid_bands_are_saved_from_the_settings_page(admin_client):
    data = _settings_form_data(admin_client)
    data.update(frequency_scoring="bands", frequency_bands="1; 2; 4; 8; 15")

    response = admin_client.post(
        reverse("admin:segmentation_segmentationsettings_change", args=[1]), data
    )

    assert response.status_code == 302
    saved = SegmentationSettings.load()
    assert saved.frequency_scoring == "bands" and saved.frequency_bands == [1, 2, 4, 8, 15]
    page = admin_client.get(
        reverse("admin:segmentation_segmentationsettings_change", args=[1]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert b'value="1, 2, 4, 8, 15"' in page.content


@pytest.mark.django_db
def test_the_dashboard_says_which_bands_scored_f(admin_client, one_time_buyers):
    settings = SegmentationSettings.load()
    settings.frequency_scoring = FrequencyScoring.BANDS
    settings.save()
    services.recalculate(now=NOW)

    page = admin_client.get(reverse("admin:segmentation_dashboard"), HTTP_ACCEPT_LANGUAGE="en")

    assert "F by purchases in the window: 1 / 2 / 3-4 / 5-9 / 10+." in page.content.decode()
