"""segmentation endpoints of the partner API (mounted under /api/v1/ by loyalty/api_urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("segments/", views.SegmentList.as_view(), name="segment-list"),
    # Any kind reaches the view, which answers an unknown one with a problem (segment_not_found).
    path(
        "segments/<str:kind>/<str:key>/members/",
        views.SegmentMembers.as_view(),
        name="segment-members",
    ),
]
