"""Segments on the partner API: the named RFM segments, quadrants and rule segments with
their sizes, and the members of one, as of the current run.

A segment can hold hundreds of thousands of members: the list is cursor paginated in member
id order (the primary keys' order), so each page is one index range scan and nothing loads
the whole segment. Only member numbers go out (look members up with members:read)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.partner_api.models import ApiScope
from loyalty.partner_api.pagination import CursorPagination
from loyalty.partner_api.schema import problems

from ..selectors import current_run, segment_members, segment_sizes
from . import serializers as s


class MemberIdCursorPagination(CursorPagination):
    ordering = "member_id"


class SegmentList(APIView):
    required_scopes = {"GET": ApiScope.SEGMENTS_READ}

    @extend_schema(
        operation_id="segment_list",
        summary="Segments, quadrants and rule segments with their sizes",
        responses={200: s.SegmentsOut, **problems()},
    )
    def get(self, request: Request) -> Response:
        run = current_run()
        return Response(s.SegmentsOut({"run": run, "segments": segment_sizes(run=run)}).data)


class SegmentMembers(generics.ListAPIView):
    required_scopes = {"GET": ApiScope.SEGMENTS_READ}
    serializer_class = s.SegmentMemberOut
    pagination_class = MemberIdCursorPagination
    filter_backends: list = []

    def get_queryset(self):
        return segment_members(run=current_run(), kind=self.kwargs["kind"], key=self.kwargs["key"])

    @extend_schema(
        operation_id="segment_members",
        summary="The members of one segment in the current run",
        description=(
            "kind rfm (key: a segment key such as champions), quadrant (key: true_friends, "
            "butterflies, barnacles or strangers) or rule (key: the rule segment's id). Active "
            "members only, in member id order, cursor paginated (page_size up to 1000; follow "
            "`next` until it is null). Each page is read from the run current at that moment: "
            "a recalculation finishing while you page changes the rest of the list."
        ),
        parameters=[
            OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=["rfm", "quadrant", "rule"]),
            OpenApiParameter("key", str, OpenApiParameter.PATH),
        ],
        responses={200: s.SegmentMemberOut(many=True), **problems(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
