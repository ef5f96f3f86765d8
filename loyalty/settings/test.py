"""Tests: fast hashing, tasks eager unless a test starts a real worker (see tests/conftest.py)."""

from .base import *  # noqa: F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests that need the real worker switch eagerness off themselves.
CELERY_TASK_ALWAYS_EAGER = True
# The SMTP sink fixture points EMAIL_HOST/PORT at itself; the default keeps mail in memory.
# A worker process started by the tests gets EMAIL_URL pointing at the sink instead.
if not env.str("EMAIL_URL", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Test runs share Redis with each other and with their worker: cached rows (program settings)
# are kept per test database, which the worker names as "test_<name>".
CACHES["default"]["KEY_PREFIX"] = str(DATABASES["default"]["NAME"]).removeprefix("test_")  # noqa: F405
# Serve static files from the app folders (no collectstatic in tests).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Webhook receivers on 127.0.0.1 over http (the SSRF guard is tested with it switched off).
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
# The mail providers' webhooks (django-anymail) exist only behind basic auth: tests post with
# this user and password unless the environment gives one.
ANYMAIL.setdefault("WEBHOOK_SECRET", ["anymail:test-webhook-secret"])  # noqa: F405
