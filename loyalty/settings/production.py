"""Production: everything security-relevant must come from the environment or the .env file.

Settings are read the way base.py reads them (django-environ: the environment, then the .env
file or ENV_FILE). Refuses to start with a clear message naming the variable when one is
missing or unsafe, and passes `manage.py check --deploy --fail-level WARNING` when they are
given.
"""

from django.core.exceptions import ImproperlyConfigured

from loyalty.checks import email_backend_problem, secret_key_problem

from .base import *  # noqa: F403
from .base import EMAIL_BACKEND, env

_REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
_missing = [name for name in _REQUIRED if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(
        "Production settings need these variables (environment or .env file): "
        + ", ".join(_missing)
    )

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
_problem = secret_key_problem(SECRET_KEY)
if _problem:
    raise ImproperlyConfigured(_problem)
# EMAIL_URL (base.py) gives an SMTP backend; EMAIL_BACKEND may name a provider's instead.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_BACKEND)
_problem = email_backend_problem(EMAIL_BACKEND)
if _problem:
    raise ImproperlyConfigured(_problem)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
