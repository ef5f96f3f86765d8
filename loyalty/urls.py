from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("loyalty.api_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("portal/", include("members.urls")),
    path("portal/", include("loyalty.points_urls")),
    path("portal/rewards/", include("rewards.urls")),
    path("portal/email/", include("campaigns.urls")),
    path("e/", include("campaigns.tracking_urls")),
    path("", RedirectView.as_view(pattern_name="points:dashboard", permanent=False)),
]
# Mail providers' bounce/complaint/open/click webhooks (django-anymail), only behind basic auth.
if settings.ANYMAIL.get("WEBHOOK_SECRET"):
    urlpatterns.append(path("anymail/", include("anymail.urls")))
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# The portal's error pages, in house style and the visitor's language.
handler403 = "members.views.errors.permission_denied"
handler404 = "members.views.errors.page_not_found"
handler500 = "members.views.errors.server_error"
