from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

# The credential a login form passes when it wants to hear about a right password on a login
# that may not log in yet (the portal's form: an address still to be confirmed).
UNCONFIRMED_OK = "unconfirmed_ok"


class EmailBackend(ModelBackend):
    """Log in with the e-mail address in any letter case."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        unconfirmed_ok = bool(kwargs.pop(UNCONFIRMED_OK, False))
        email = username or kwargs.get("email")
        if email:
            email = email.strip().lower()
        if not unconfirmed_ok:
            return super().authenticate(request, username=email, password=password, **kwargs)
        return self._with_inactive(email, password)

    @staticmethod
    def _with_inactive(email, password):
        """ModelBackend's one password check, but an inactive login with the right password
        is returned too: the caller's form refuses it with its reason (never logs it in), and
        a right password is no failed login for the throttle."""
        if not email or password is None:
            return None
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(email)
        except user_model.DoesNotExist:
            user_model().set_password(password)  # the same time as for a known address
            return None
        return user if user.check_password(password) else None
