"""Portal pages of members: enrolment, confirmation, login/logout, password reset, account."""

from django.urls import path

from .views import access, account

app_name = "members"

urlpatterns = [
    path("enrol/", access.enrol, name="enrol"),
    path("enrol/sent/", access.enrol_sent, name="enrol_sent"),
    path("confirm/resend/", access.resend_confirmation, name="resend_confirmation"),
    path("confirm/<str:token>/", access.confirm, name="confirm"),
    path("terms/", access.terms, name="terms"),
    path(
        "invitation/opt-out/<str:token>/",
        access.invitation_opt_out,
        name="invitation_opt_out",
    ),
    path("terms/accept/", account.terms_accept, name="terms_accept"),
    path("faq/", account.faq, name="faq"),
    path("privacy/", account.privacy, name="privacy"),
    path("account/", account.account, name="account"),
    path("account/consent/", account.consent, name="consent"),
    path("account/profiling/", account.profiling, name="profiling"),
    path("account/password/", account.PasswordChangeView.as_view(), name="password_change"),
    path("account/export/", account.data_export, name="data_export"),
    path("account/erase/", account.erase, name="erase"),
    path("login/", access.LoginView.as_view(), name="login"),
    path("logout/", access.LogoutView.as_view(), name="logout"),
    path("password/reset/", access.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/", access.PasswordResetDoneView.as_view(), name="password_reset_done"
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        access.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        access.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
