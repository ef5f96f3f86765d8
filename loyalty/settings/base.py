"""Settings shared by every environment, read from the environment with django-environ.

With no environment at all this is the embedded default: a SQLite file, Celery tasks run
in-process (eager) and e-mail written to the console. Setting DATABASE_URL and REDIS_URL
switches to PostgreSQL, Redis as broker and cache, and separate worker/beat processes.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from loyalty.checks import DEVELOPMENT_SECRET_KEY

from .email_url import email_settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The one place settings come from: the environment, then the .env file (ENV_FILE names
# another one) for what the environment leaves unset. Every settings module reads `env`.
_env_file = env.str("ENV_FILE", default="")
if _env_file and not Path(_env_file).is_file():
    raise ImproperlyConfigured(f"ENV_FILE points to {_env_file}, which is not a file.")
environ.Env.read_env(_env_file or BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    # Django's admin with the project's site (loyalty/admin_site.py) as admin.site.
    "loyalty.apps.LoyaltyAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "anymail",
    # Project plumbing that every app may use (imports no domain model).
    "loyalty.outbox",
    "loyalty.partner_api",
    "loyalty.audit",
    # Our apps, in dependency order: each may import only from those above it.
    "members",
    "loyalty",
    "loyalty.webhooks",
    "segmentation",
    "rewards",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # The client's address for the audit log's entries (loyalty.audit).
    "loyalty.audit.services.AuditContextMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into our lockout page (members.throttling).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loyalty.urls"
WSGI_APPLICATION = "loyalty.wsgi.application"
ASGI_APPLICATION = "loyalty.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "loyalty.context_processors.program",
            ],
        },
    },
]

# An empty DATABASE_URL counts as unset: the embedded SQLite default.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the demo's web process and eager tasks share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # The purchases' covering index (PostgreSQL) is a plain index here; that is all it needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The purchase path's statements are prepared on their connection (loyalty/rawsql.py); false
# for a transaction-mode pooler that cannot keep them (PgBouncer before 1.21).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "members.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "members.auth.EmailBackend"]
LOGIN_URL = "members:login"
LOGIN_REDIRECT_URL = "points:dashboard"
LOGOUT_REDIRECT_URL = "members:login"

LANGUAGE_CODE = "nl"
FORMAT_MODULE_PATH = ["loyalty.formats"]
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# E-mail: the console by default; EMAIL_URL picks another backend: SMTP
# (smtp://user:pass@host:587/?tls=True, smtp+tls://, smtps://, smtp+ssl://), files
# (filemail:///path/to/folder), memory (memorymail://) or none (dummymail://).
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Loyalty <loyalty@example.com>")
_email = email_settings(env.str("EMAIL_URL", default="consolemail://"), base_dir=BASE_DIR)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"]
if "EMAIL_FILE_PATH" in _email:
    EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
# A mail provider's API instead of SMTP, through django-anymail: EMAIL_BACKEND names its backend
# (anymail.backends.postmark.EmailBackend, .mailgun., .amazon_ses., .sendgrid., .brevo. ...)
# and every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"] (ANYMAIL_POSTMARK_SERVER_TOKEN,
# ANYMAIL_MAILGUN_API_KEY ...). ANYMAIL_WEBHOOK_SECRET ("user:password", several
# comma-separated while rotating) protects the provider's webhooks at /anymail/<provider>/
# tracking/ with basic auth; without it those URLs do not exist (docs/campaigns.md).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_BACKEND)
ANYMAIL: dict[str, object] = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and name != "ANYMAIL_WEBHOOK_SECRET"
}
_webhook_secrets = env.list("ANYMAIL_WEBHOOK_SECRET", default=[])
if _webhook_secrets:
    ANYMAIL["WEBHOOK_SECRET"] = _webhook_secrets

# Redis: broker for Celery and the cache. Without it Celery runs tasks in-process.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_TASK_ALWAYS_EAGER = True
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")
# The worker keeps freed memory for its next tasks (loyalty/memory.py): faster segmentation
# runs, for a worker that stays at the size of its largest task.
WORKER_KEEP_FREED_MEMORY = env.bool("WORKER_KEEP_FREED_MEMORY", default=True)

# The partner API (/api/v1/): per-partner hashed keys with scopes, one problem+json error
# format, cursor pagination, a request budget per key in the cache (Redis). Each app's endpoints
# name only these dotted paths, so no app imports another's API code.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["loyalty.partner_api.access.PartnerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["loyalty.partner_api.access.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["loyalty.partner_api.access.PartnerKeyThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "loyalty.partner_api.negotiation.JsonFirstNegotiation",
    "DEFAULT_PAGINATION_CLASS": "loyalty.partner_api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "loyalty.partner_api.problems.problem_exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty platform API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "The partner API: members, purchases and refunds, points, rewards, "
    "redemptions and vouchers, segments. See docs/api.md for the integration guide.",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
}

# Login throttling (django-axes, database handler): after LOGIN_FAILURE_LIMIT failed logins
# for one e-mail address, or from one client address, further logins from there are refused
# for LOGIN_COOLOFF_MINUTES (counted from the last attempt). See members/throttling.py.
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
AXES_USERNAME_FORM_FIELD = "username"  # what AuthenticationForm posts (the e-mail address)
AXES_USERNAME_CALLABLE = "members.throttling.login_username"
AXES_CLIENT_IP_CALLABLE = "members.throttling.client_ip_address"
AXES_LOCKOUT_CALLABLE = "members.throttling.lockout_response"
AXES_RESET_ON_SUCCESS = False  # else logging in to one's own account would reset the address
AXES_DISABLE_ACCESS_LOG = True  # no record of successful logins: personal data without use
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_ENABLE_ADMIN = False  # members/admin.py registers them, with an unlock action
# Reverse proxies in front of the app that append to X-Forwarded-For; 0 = use REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# How long an e-mail confirmation link stays valid.
MEMBER_CONFIRMATION_MAX_AGE = env.int("MEMBER_CONFIRMATION_MAX_AGE", default=3 * 24 * 3600)
# The marketing channels the portal offers consent for (e-mail always; sms and post for
# programs that send offers that way). The API and admin record and show every channel.
MEMBER_MARKETING_CHANNELS = env.list("MEMBER_MARKETING_CHANNELS", default=["email", "sms", "post"])
# Base URL used in e-mails sent from background tasks, where there is no request.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Webhooks (loyalty/webhooks): only public https targets unless this is on (tests, local demo:
# a receiver on 127.0.0.1 over http). See loyalty/webhooks/transport.py.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
