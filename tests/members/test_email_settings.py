"""EMAIL_URL: every scheme django-environ accepts gives settings Django's backends can use."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from loyalty.settings.email_url import DEFAULT_FILE_FOLDER, email_settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PROJECT = Path("/srv/loyalty")
SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://mailer:s3cret@smtp.example.nl:2525",
            {
                "EMAIL_BACKEND": SMTP,
                "EMAIL_HOST": "smtp.example.nl",
                "EMAIL_PORT": 2525,
                "EMAIL_HOST_USER": "mailer",
                "EMAIL_HOST_PASSWORD": "s3cret",
                "EMAIL_USE_TLS": False,
                "EMAIL_USE_SSL": False,
            },
        ),
        ("smtp://smtp.example.nl", {"EMAIL_BACKEND": SMTP, "EMAIL_PORT": 25}),
        (
            "smtp://smtp.example.nl:587/?tls=True",
            {"EMAIL_BACKEND": SMTP, "EMAIL_PORT": 587, "EMAIL_USE_TLS": True},
        ),
        (
            "smtps://mailer:s3cret@smtp.example.nl",
            {"EMAIL_BACKEND": SMTP, "EMAIL_PORT": 587, "EMAIL_USE_TLS": True},
        ),
        (
            "smtp+tls://smtp.example.nl:587",
            {"EMAIL_BACKEND": SMTP, "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False},
        ),
        (
            "smtp+ssl://smtp.example.nl",
            {"EMAIL_BACKEND": SMTP, "EMAIL_PORT": 465, "EMAIL_USE_SSL": True},
        ),
        (
            "smtp://user%40example.nl:p%40ss%2Fword@smtp.example.nl:25?timeout=5",
            {
                "EMAIL_HOST_USER": "user@example.nl",
                "EMAIL_HOST_PASSWORD": "p@ss/word",
                "EMAIL_TIMEOUT": 5,
            },
        ),
        ("consolemail://", {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        (
            "filemail:///var/mail/loyalty",
            {
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": "/var/mail/loyalty",
            },
        ),
        ("filemail://mails/out", {"EMAIL_FILE_PATH": str(PROJECT / "mails" / "out")}),
        ("filemail://", {"EMAIL_FILE_PATH": str(PROJECT / DEFAULT_FILE_FOLDER)}),
        ("memorymail://", {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}),
        ("dummymail://", {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}),
    ],
)
def test_every_scheme_gives_the_settings_it_means(url, expected):
    settings = email_settings(url, base_dir=PROJECT)

    assert {name: settings.get(name) for name in expected} == expected


def test_a_timeout_is_always_set():
    assert email_settings("smtp://smtp.example.nl", base_dir=PROJECT)["EMAIL_TIMEOUT"] == 20


def test_only_the_file_backend_gets_a_folder():
    assert "EMAIL_FILE_PATH" not in email_settings("consolemail://", base_dir=PROJECT)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://mail.example.nl", "pop3"),
        ("smtp://smtp.example.nl/?tsl=True", "unknown option 'tsl'"),
        ("smtp://smtp.example.nl/?tls=perhaps", "tls='perhaps'"),
        ("smtp+ssl://smtp.example.nl/?tls=True", "both TLS"),
        ("smtp://smtp.example.nl/?timeout=soon", "timeout='soon'"),
    ],
)
def test_a_url_that_cannot_work_is_refused_with_the_reason(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        email_settings(url, base_dir=PROJECT)


def _settings_under(email_url: str, code: str) -> str:
    """Run `code` in a fresh process whose settings read EMAIL_URL=email_url."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL")
    }
    environment.update(
        EMAIL_URL=email_url, DJANGO_SETTINGS_MODULE="loyalty.settings.local", ENV_FILE=""
    )
    script = "import django; django.setup()\nfrom django.conf import settings\n" + code
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_filemail_in_the_environment_writes_sent_mail_to_that_folder(tmp_path):
    folder = tmp_path / "mails"

    _settings_under(
        f"filemail://{folder}",
        "from django.core.mail import send_mail\n"
        "send_mail('Bevestig je adres', 'Hallo Sanne', 'club@example.nl', ['sanne@example.nl'])",
    )

    [written] = list(folder.iterdir())
    text = written.read_text()
    assert "Subject: Bevestig je adres" in text
    assert "To: sanne@example.nl" in text


def test_smtp_over_implicit_tls_reaches_the_settings_module():
    printed = _settings_under(
        "smtp+ssl://mailer:s3cret@smtp.example.nl",
        "import json\n"
        "print(json.dumps([settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT,"
        " settings.EMAIL_USE_SSL, settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER]))",
    )

    assert json.loads(printed) == [SMTP, "smtp.example.nl", 465, True, False, "mailer"]
