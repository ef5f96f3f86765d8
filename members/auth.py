from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Log in with the e-mail address in any letter case."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username or kwargs.get("email")
        if email:
            email = email.strip().lower()
        return super().authenticate(request, username=email, password=password, **kwargs)
