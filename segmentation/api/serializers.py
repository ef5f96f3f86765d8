"""Shapes of the segments endpoints."""

from __future__ import annotations

from rest_framework import serializers


class RunOut(serializers.Serializer):
    id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    stage = serializers.CharField(
        help_text="Stage key: queued, reading, scoring, rule_segments, writing or done."
    )
    stage_name = serializers.CharField(
        source="get_stage_display", help_text="The stage in the request's language."
    )


class SegmentSizeOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["rfm", "quadrant", "rule"])
    key = serializers.CharField(help_text="Segment or quadrant key, or the rule segment's id.")
    name = serializers.CharField()
    members = serializers.IntegerField(help_text="Active members in it in the current run.")


class SegmentsOut(serializers.Serializer):
    run = RunOut(allow_null=True, help_text="The current run; null before the first one.")
    segments = SegmentSizeOut(many=True)


class SegmentMemberOut(serializers.Serializer):
    member_number = serializers.CharField()
