"""The program core's endpoints under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("purchases/", views.PurchaseCreate.as_view(), name="purchase-create"),
    path("purchases/batch/", views.PurchaseBatch.as_view(), name="purchase-batch"),
    path("purchases/<str:external_id>/", views.PurchaseDetail.as_view(), name="purchase-detail"),
    path(
        "purchases/<str:external_id>/refunds/",
        views.RefundCreate.as_view(),
        name="refund-create",
    ),
    path(
        "members/<str:member_number>/standing/",
        views.MemberStanding.as_view(),
        name="member-standing",
    ),
    path("members/<str:member_number>/ledger/", views.MemberLedger.as_view(), name="member-ledger"),
]
