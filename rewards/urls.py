"""Portal pages of rewards."""

from django.urls import path

from . import views

app_name = "rewards"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("<int:pk>/redeem/", views.redeem, name="redeem"),
    path("mine/", views.my_rewards, name="mine"),
    path("mine/<int:pk>/", views.redemption_detail, name="redemption"),
]
