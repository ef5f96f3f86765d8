"""Runs, run pages and exports in the reader's language: the stage is a key, parameters are a
labelled table, CSV headers and names follow the exporting user, keys stay for machines."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from loyalty import demo
from loyalty.partner_api.models import ApiScope
from segmentation import display, services
from segmentation.models import (
    MemberScore,
    RuleSegment,
    RuleSegmentMember,
    RunStage,
    RunStatus,
    SegmentationRun,
)
from tests.api.conftest import client_for
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def scored(db):
    demo.seed(demo.DemoSpec(members=300, lines=False, now=NOW))
    with translation.override("nl"):  # started by a Dutch-speaking manager
        return services.recalculate(now=NOW)


def _export(admin_client, language: str, query: str) -> list[list[str]]:
    response = admin_client.get(
        reverse("admin:segmentation_export") + query, HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text), delimiter=";"))


# --- the stage -----------------------------------------------------------------------------


def test_a_run_stores_its_stage_as_a_key_whoever_started_it(scored):
    assert scored.stage == RunStage.DONE == "done"
    with translation.override("en"):
        assert scored.get_stage_display() == "Done"
    with translation.override("nl"):
        assert scored.get_stage_display() == "Klaar"


def test_the_run_list_shows_the_stage_in_the_viewers_language(admin_client, scored):
    url = reverse("admin:segmentation_segmentationrun_changelist")

    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    dutch = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="nl").content.decode()

    assert '<td class="field-stage">Done</td>' in english and "Klaar" not in english
    assert '<td class="field-stage">Klaar</td>' in dutch


def test_the_progress_json_names_the_stage_in_the_viewers_language(admin_client, db):
    with translation.override("nl"):
        running = services.run_start()
    url = reverse("admin:segmentation_segmentationrun_progress", args=[running.pk])

    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    dutch = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="nl").json()
    missing = admin_client.get(
        reverse("admin:segmentation_segmentationrun_progress", args=[running.pk + 1])
    )

    assert english == {
        "id": running.pk,
        "status": "running",
        "status_name": "Running",
        "stage": "queued",
        "stage_name": "Queued",
        "progress": 0,
    }
    assert dutch["stage"] == "queued" and dutch["stage_name"] == "In de wachtrij"
    assert missing.status_code == 404 and missing.json()["code"] == "run_not_found"
    # The run page polls it while the run is in progress.
    page = admin_client.get(
        reverse("admin:segmentation_segmentationrun_change", args=[running.pk])
    ).content.decode()
    assert url in page and "run_progress.js" in page


def test_the_api_gives_the_stage_key_and_its_name_in_the_requests_language(scored):
    api = client_for(PartnerFactory(), ApiScope.SEGMENTS_READ)

    english = api.get("/api/v1/segments/", HTTP_ACCEPT_LANGUAGE="en").json()["run"]
    dutch = api.get("/api/v1/segments/", HTTP_ACCEPT_LANGUAGE="nl").json()["run"]

    assert english["stage"] == dutch["stage"] == "done"
    assert english["stage_name"] == "Done" and dutch["stage_name"] == "Klaar"


def test_the_data_migration_turns_stored_stage_texts_into_keys(db):
    runs = {
        text: SegmentationRun.objects.create(status=status, stage=text)
        for text, status in [
            ("Klaar", "done"),
            ("Done", "failed"),
            ("Scoren", "failed"),
            ("Writing the snapshot", "failed"),
            ("Segmenten op basis van regels vullen", "failed"),
            ("Something else", "failed"),
            ("Iets anders", "done"),
        ]
    }
    migration = importlib.import_module(
        "segmentation.migrations.0007_frequency_bands_and_stage_keys"
    )

    migration.stage_texts_to_keys(apps, None)

    stages = {text: SegmentationRun.objects.get(pk=run.pk).stage for text, run in runs.items()}
    assert stages == {
        "Klaar": "done",
        "Done": "done",
        "Scoren": "scoring",
        "Writing the snapshot": "writing",
        "Segmenten op basis van regels vullen": "rule_segments",
        "Something else": "",
        "Iets anders": "done",
    }


# --- the run page ----------------------------------------------------------------------------


def test_the_run_page_shows_the_parameters_as_labelled_localised_tables(admin_client, scored):
    url = reverse("admin:segmentation_segmentationrun_change", args=[scored.pk])

    english = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    dutch = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="nl").content.decode()

    assert "<pre>" not in english and '"thresholds"' not in english
    for table in ("run-counts", "run-scoring", "run-thresholds", "run-timings"):
        assert f'id="{table}"' in english and f'id="{table}"' in dutch
    members = scored.parameters["members"]
    assert f'<th scope="row">Members scored</th><td>{members}</td>' in english
    assert '<th scope="row">Score scale</th><td>1-5</td>' in english
    assert "Quantiles (an equal share of members per score)" in english
    assert "BG/NBD (purchases and P(alive))" in english
    # Numbers in the reader's language: the loyalty threshold with a decimal comma in Dutch.
    loyalty = scored.parameters["thresholds"]["loyalty"]
    assert f"<td>{loyalty:.2f}</td>" in english
    assert f"<td>{loyalty:.2f}</td>".replace(".", ",") in dutch
    assert "RFM-venster (dagen)" in dutch


def test_the_band_text_reads_as_purchase_counts():
    with translation.override("en"):
        assert display.frequency_bands_text([1, 2, 3, 5, 10]) == "1 / 2 / 3-4 / 5-9 / 10+"
        assert display.frequency_bands_text([1, 3, 1000]) == "1-2 / 3-999 / 1,000+"
    with translation.override("nl"):
        assert display.frequency_bands_text([1, 3, 1000]) == "1-2 / 3-999 / 1.000+"


# --- the CSV export --------------------------------------------------------------------------


def test_the_export_is_in_the_exporting_users_language_with_keys_for_machines(admin_client, scored):
    query = f"?run={scored.pk}&quadrant=true_friends"

    english = _export(admin_client, "en", query)
    dutch = _export(admin_client, "nl", query)

    assert english[0][:7] == [
        "member number",
        "e-mail",
        "first name",
        "last name",
        "language",
        "segment",
        "quadrant",
    ]
    assert dutch[0][0] == "lidnummer"
    assert english[0][-3:] == dutch[0][-3:] == ["segment_key", "quadrant_key", "language_key"]
    assert {row[6] for row in english[1:]} == {"True friends"}
    assert {row[6] for row in dutch[1:]} == {"Echte vrienden"}
    assert {row[-2] for row in dutch[1:]} == {"true_friends"}
    scores = {
        score.member.member_number: score
        for score in MemberScore.objects.filter(run=scored, quadrant="true_friends").select_related(
            "member"
        )
    }
    assert {row[0] for row in dutch[1:]} == set(scores) and scores
    spend_column = english[0].index("spend in window (EUR)")
    for english_row, dutch_row in zip(english[1:], dutch[1:], strict=True):
        score = scores[english_row[0]]
        assert english_row[-3] == dutch_row[-3] == score.segment
        assert dutch_row[5] != score.segment or score.segment == "champions"
        assert english_row[spend_column] == f"{score.monetary:.2f}"
        assert dutch_row[spend_column] == f"{score.monetary:.2f}".replace(".", ",")
        language = {"nl": ("Dutch", "Nederlands"), "en": ("English", "Engels")}
        assert (english_row[4], dutch_row[4]) == language[score.member.language]
        assert english_row[-1] == score.member.language


# --- the example rule segments ---------------------------------------------------------------


def test_each_example_rule_segment_selects_what_its_name_says(db):
    demo.seed(demo.DemoSpec(members=400, lines=False, now=NOW))

    call_command("demo_segments", stdout=io.StringIO())

    run = SegmentationRun.objects.get(is_current=True)
    assert run.status == RunStatus.DONE

    def members_of(name: str) -> set[int]:
        segment = RuleSegment.objects.get(name=name)
        return set(
            RuleSegmentMember.objects.filter(run=run, segment=segment).values_list(
                "member_id", flat=True
            )
        )

    scores = MemberScore.objects.filter(run=run)
    champions = set(scores.filter(segment="champions").values_list("member_id", flat=True))
    with_consent = members_of("Champions with e-mail consent")
    assert with_consent and len(with_consent) <= len(champions)
    assert with_consent <= champions
    slipping = members_of("Win back: valuable and slipping")
    assert slipping <= set(
        scores.filter(segment__in=["at_risk", "cant_lose"], clv__gte=20).values_list(
            "member_id", flat=True
        )
    )
    big_spenders = RuleSegment.objects.get(name="Big spenders of the last 90 days")
    assert big_spenders.rule == {"all": [{"field": "spend", "op": "gte", "value": 250, "days": 90}]}


def test_the_demo_command_corrects_examples_created_with_the_old_rules(db):
    from segmentation.management.commands.demo_segments import OUTDATED_RULES

    old = RuleSegment.objects.create(
        name="Champions with e-mail consent", rule=OUTDATED_RULES["Champions with e-mail consent"]
    )
    edited = RuleSegment.objects.create(
        name="Big spenders of the last 90 days",
        rule={"all": [{"field": "spend", "op": "gte", "value": 500, "days": 90}]},
    )
    services.recalculate(now=NOW)  # so the command does not need to run one

    call_command("demo_segments", stdout=io.StringIO())

    old.refresh_from_db()
    edited.refresh_from_db()
    assert old.rule["all"][0] == {"field": "segment", "op": "in", "value": ["champions"]}
    assert edited.rule["all"][0]["value"] == 500  # a manager's own rule is left alone
