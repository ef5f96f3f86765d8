"""Portal pages of members: enrolment, confirmation, login/logout, password reset, profile."""

app_name = "members"

urlpatterns: list = []
