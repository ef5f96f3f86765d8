"""rewards endpoints of the partner API (mounted under /api/v1/ by loyalty/api_urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("rewards/", views.RewardList.as_view(), name="reward-list"),
    path(
        "members/<str:member_number>/rewards/",
        views.MemberRewards.as_view(),
        name="member-rewards",
    ),
    path("redemptions/", views.RedemptionCreate.as_view(), name="redemption-create"),
    path(
        "redemptions/<str:redemption_id>/",
        views.RedemptionDetail.as_view(),
        name="redemption-detail",
    ),
    path(
        "redemptions/<str:redemption_id>/cancel/",
        views.RedemptionCancel.as_view(),
        name="redemption-cancel",
    ),
    path("vouchers/validate/", views.VoucherValidate.as_view(), name="voucher-validate"),
    path("vouchers/use/", views.VoucherUse.as_view(), name="voucher-use"),
]
