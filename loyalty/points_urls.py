"""Portal pages of the program core: dashboard (balance, tier, progress) and points history."""

from django.urls import path

from . import views

app_name = "points"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("history/", views.history, name="history"),
]
