"""Django's e-mail settings from one EMAIL_URL, for every scheme django-environ knows.

django-environ parses the URL but leaves gaps a settings module has to fill: the file
backend's folder (`filemail://`), implicit TLS (`smtp+ssl://`), and options in the query
(`?tls=True` lands in an OPTIONS dict nothing reads). This fills them, and refuses what it
cannot use with a message naming EMAIL_URL instead of silently sending without TLS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

# Where `filemail://` without a path writes its files, relative to the project folder.
DEFAULT_FILE_FOLDER = "sent-emails"
DEFAULT_TIMEOUT = 20
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# Query options and the setting each one sets.
_FLAG_OPTIONS = {
    "tls": "EMAIL_USE_TLS",
    "use_tls": "EMAIL_USE_TLS",
    "email_use_tls": "EMAIL_USE_TLS",
    "ssl": "EMAIL_USE_SSL",
    "use_ssl": "EMAIL_USE_SSL",
    "email_use_ssl": "EMAIL_USE_SSL",
}


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"EMAIL_URL option {name}={value!r} is not true or false.")


def email_settings(url: str, *, base_dir: Path) -> dict[str, Any]:
    """The EMAIL_* settings `url` means: smtp, smtps and smtp+tls (STARTTLS, as
    django-environ reads smtps), smtp+ssl (implicit TLS), consolemail, filemail (a folder:
    `filemail:///var/mail/loyalty`, or relative to `base_dir`), memorymail and dummymail."""
    config = environ.Env.email_url_config(url)  # ImproperlyConfigured for an unknown scheme
    parts = urlsplit(url)
    settings: dict[str, Any] = {
        "EMAIL_BACKEND": config["EMAIL_BACKEND"],
        "EMAIL_HOST": config.get("EMAIL_HOST") or "localhost",
        "EMAIL_PORT": config.get("EMAIL_PORT"),
        "EMAIL_HOST_USER": config.get("EMAIL_HOST_USER") or "",
        "EMAIL_HOST_PASSWORD": config.get("EMAIL_HOST_PASSWORD") or "",
        "EMAIL_USE_TLS": bool(config.get("EMAIL_USE_TLS")),
        "EMAIL_USE_SSL": bool(config.get("EMAIL_USE_SSL")),
        "EMAIL_TIMEOUT": DEFAULT_TIMEOUT,
    }
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        key = name.lower()
        if key in _FLAG_OPTIONS:
            settings[_FLAG_OPTIONS[key]] = _flag(name, values[-1])
        elif key == "timeout":
            try:
                settings["EMAIL_TIMEOUT"] = int(values[-1])
            except ValueError as exc:
                raise ImproperlyConfigured(
                    f"EMAIL_URL option timeout={values[-1]!r} is not a number of seconds."
                ) from exc
        else:
            raise ImproperlyConfigured(
                f"EMAIL_URL has an unknown option {name!r} (known: tls, ssl, timeout)."
            )
    if settings["EMAIL_USE_TLS"] and settings["EMAIL_USE_SSL"]:
        raise ImproperlyConfigured(
            "EMAIL_URL asks for both TLS (STARTTLS) and SSL (implicit TLS): choose one, e.g. "
            "smtp+tls://host:587 or smtp+ssl://host:465."
        )
    if settings["EMAIL_PORT"] is None:
        settings["EMAIL_PORT"] = (
            465 if settings["EMAIL_USE_SSL"] else 587 if settings["EMAIL_USE_TLS"] else 25
        )
    if parts.scheme == "filemail":
        # django-environ drops the leading "/" of an absolute folder; read it from the URL.
        folder = unquote(parts.netloc + parts.path) or DEFAULT_FILE_FOLDER
        path = Path(folder)
        settings["EMAIL_FILE_PATH"] = str(path if path.is_absolute() else base_dir / path)
    return settings
