"""Short URLs of tracked messages (under /e/): the open pixel and the link redirect."""

from django.urls import path

from . import views

app_name = "campaign_tracking"

urlpatterns = [
    path("o/<str:token>/", views.open_pixel, name="open"),
    path("c/<str:token>/", views.click, name="click"),
]
