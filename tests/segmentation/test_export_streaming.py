"""A segment export streams: rows are fetched a chunk at a time through a cursor and written
out as they come, so its memory does not grow with the segment (issue 16)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.urls import reverse

from loyalty import demo
from segmentation import selectors, services
from segmentation.models import MemberScore

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def scored(db, monkeypatch):
    monkeypatch.setattr(selectors, "EXPORT_CHUNK_ROWS", 7)
    demo.seed(demo.DemoSpec(members=300, lines=False, now=NOW))
    return services.recalculate(now=NOW)


def _largest_quadrant(run) -> str:
    counts = {}
    for quadrant in MemberScore.objects.filter(run=run).values_list("quadrant", flat=True):
        counts[quadrant] = counts.get(quadrant, 0) + 1
    return max(counts, key=counts.get)


def test_a_segment_larger_than_a_chunk_streams_all_its_members_in_order(admin_client, scored):
    quadrant = _largest_quadrant(scored)
    expected = list(
        MemberScore.objects.filter(run=scored, quadrant=quadrant)
        .order_by("member_id")
        .values_list("member__member_number", flat=True)
    )
    assert len(expected) > 3 * 7  # several chunks

    response = admin_client.get(
        reverse("admin:segmentation_export") + f"?run={scored.pk}&quadrant={quadrant}"
    )

    assert isinstance(response, StreamingHttpResponse)
    lines = [piece.decode() for piece in response.streaming_content]
    assert len(lines) == 1 + len(expected)  # one piece per row: written out as they come
    rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=";"))
    assert [row[0] for row in rows[1:]] == expected


@pytest.mark.postgres
def test_the_export_reads_through_a_server_side_cursor_a_chunk_at_a_time(admin_client, scored):
    quadrant = _largest_quadrant(scored)
    response = admin_client.get(
        reverse("admin:segmentation_export") + f"?run={scored.pk}&quadrant={quadrant}"
    )
    content = iter(response.streaming_content)

    def open_cursors() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_cursors")
            return [row[0] for row in cursor.fetchall()]

    assert open_cursors() == []  # nothing read before the body is sent
    next(content)  # the header
    next(content)  # the first row: the cursor is declared, the first chunk fetched
    declared = open_cursors()
    assert len(declared) == 1 and "DECLARE" in declared[0].upper()
    rest = list(content)
    assert len(rest) > 7
    assert open_cursors() == []  # closed once the last chunk is read
