"""Portal pages of members: enrolment, confirmation, login/logout, password reset."""

from django.urls import path

from . import account_views, views

app_name = "members"

urlpatterns = [
    path("enrol/", views.enrol, name="enrol"),
    path("enrol/sent/", views.enrol_sent, name="enrol_sent"),
    path("confirm/resend/", views.resend_confirmation, name="resend_confirmation"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("terms/", views.terms, name="terms"),
    path("terms/accept/", account_views.terms_accept, name="terms_accept"),
    path("faq/", account_views.faq, name="faq"),
    path("privacy/", account_views.privacy, name="privacy"),
    path("account/", account_views.account, name="account"),
    path("account/consent/", account_views.consent, name="consent"),
    path("account/password/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/export/", account_views.data_export, name="data_export"),
    path("account/erase/", account_views.erase, name="erase"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
