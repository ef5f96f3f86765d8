"""members endpoints of the partner API (mounted under /api/v1/ by loyalty/api_urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("members/", views.MemberCollection.as_view(), name="member-list"),
    path("members/<str:member_number>/", views.MemberDetail.as_view(), name="member-detail"),
    path(
        "members/<str:member_number>/consent/",
        views.MemberConsent.as_view(),
        name="member-consent",
    ),
]
