"""The versioned API: /api/v1/ includes each app's `api.urls` by name, plus the schema and its
offline documentation; anything else under /api/ is a problem+json 404, never an HTML page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .partner_api.problems import api_not_found

app_name = "api"

urlpatterns = [
    path("v1/", include("members.api.urls")),
    path("v1/", include("loyalty.api.urls")),
    path("v1/", include("segmentation.api.urls")),
    path("v1/", include("rewards.api.urls")),
    path("v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("v1/redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    re_path(r"^[\s\S]*$", api_not_found),
]
