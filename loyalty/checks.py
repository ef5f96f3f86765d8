"""Deployment rules: what production must not run with.

The production settings refuse to start on these (ImproperlyConfigured), and the deploy
check below reports them for any settings module, so `manage.py check --deploy` catches
a development key or a mail backend that prints e-mail whatever the settings are called.
Plain functions at the top: the settings import this module before Django is set up.
"""

from __future__ import annotations

# base.py's fallback, public in this repository: sessions, password-reset links and signed
# confirmation links made with it can be forged by anyone.
DEVELOPMENT_SECRET_KEY = "insecure-development-key-change-me-in-production-0123456789"
# The prefix of the keys `django-admin startproject` writes into settings files.
DJANGO_INSECURE_PREFIX = "django-insecure-"
# Django's own rule for a strong key (check security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5

# Backends that do not deliver e-mail: console and file write it (with confirmation and
# password-reset links) to the log or the disk; locmem and dummy drop it.
UNDELIVERING_EMAIL_BACKENDS = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)


def secret_key_problem(key: str | None) -> str | None:
    """Why `key` must not sign anything in production, or None when it may."""
    if not key:
        return "SECRET_KEY is not set."
    if key == DEVELOPMENT_SECRET_KEY:
        return "SECRET_KEY is the public development key from loyalty/settings/base.py."
    if key.startswith(DJANGO_INSECURE_PREFIX):
        return f"SECRET_KEY starts with {DJANGO_INSECURE_PREFIX!r}: a generated development key."
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return (
            f"SECRET_KEY is weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters with "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} distinct ones."
        )
    return None


def email_backend_problem(backend: str) -> str | None:
    """Why `backend` must not send production e-mail, or None when it may."""
    if backend in UNDELIVERING_EMAIL_BACKENDS:
        return (
            f"EMAIL_BACKEND is {backend}, which does not deliver e-mail (console and file "
            "write confirmation and password-reset links to the log or disk). Set EMAIL_URL "
            "to an SMTP URL (smtp://user:password@host:587/?tls=True) or EMAIL_BACKEND to "
            "a mail provider's backend."
        )
    return None


def bounce_webhook_problem(backend: str, anymail: dict) -> str | None:
    """Why bounces and complaints of a mail provider would go unheard, or None."""
    if backend.startswith("anymail.") and not anymail.get("WEBHOOK_SECRET"):
        return (
            f"EMAIL_BACKEND is {backend}, but ANYMAIL_WEBHOOK_SECRET is not set: the provider's "
            "bounce and complaint webhooks are not mounted, so bounced and complaining "
            "addresses are never suppressed and keep being mailed."
        )
    return None


def deploy_settings_check(app_configs, **kwargs) -> list:
    """`check --deploy`: the development key and undelivering mail backends, any settings.

    Registered in LoyaltyConfig.ready() with the security tag, deploy only.
    """
    from django.conf import settings
    from django.core.checks import CheckMessage, Error, Warning

    messages: list[CheckMessage] = []
    key = getattr(settings, "SECRET_KEY", "")
    if key == DEVELOPMENT_SECRET_KEY:
        messages.append(
            Error(
                secret_key_problem(key) or "",
                hint="Set SECRET_KEY (environment or .env) to a long random value.",
                id="loyalty.E001",
            )
        )
    problem = email_backend_problem(settings.EMAIL_BACKEND)
    if problem:
        messages.append(
            Error(
                problem,
                hint="Production settings refuse this; other settings modules should too.",
                id="loyalty.E002",
            )
        )
    problem = bounce_webhook_problem(settings.EMAIL_BACKEND, getattr(settings, "ANYMAIL", {}))
    if problem:
        messages.append(
            Warning(
                problem,
                hint="Set ANYMAIL_WEBHOOK_SECRET and point the provider's tracking webhook at "
                "/anymail/<provider>/tracking/ (docs/campaigns.md).",
                id="loyalty.W001",
            )
        )
    return messages
