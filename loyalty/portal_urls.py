"""Portal pages of the program core: dashboard (balance, tier, progress) and points history."""

app_name = "portal"

urlpatterns: list = []
