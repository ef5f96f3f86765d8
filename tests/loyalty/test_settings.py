"""The production settings: refuse to start without their environment, pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loyalty.checks import DEVELOPMENT_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "k3y-" + "x7Q!p9Lm2#vB8nR4tY6uW1eZ5aS0dF3gH" * 2,
    "ALLOWED_HOSTS": "loyalty.example.nl",
    "DATABASE_URL": "sqlite:////tmp/production-check.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "smtp://mailer:secret@smtp.example.nl:587/?tls=True",
}
# Read by the settings; a developer's own values must not leak into these runs.
SETTINGS_VARIABLES = {*PRODUCTION_ENV, "ENV_FILE", "EMAIL_BACKEND", "DEBUG"}


@pytest.fixture
def no_env_file(tmp_path):
    """An empty .env file, so a developer's own .env in the repository plays no part."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return {"ENV_FILE": str(empty)}


def manage(*args, env, settings="loyalty.settings.production"):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in SETTINGS_VARIABLES and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": settings, **env},
        timeout=120,
    )


def test_production_refuses_to_start_and_names_what_is_missing(no_env_file):
    result = manage("check", env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"], **no_env_file})

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr and "DATABASE_URL" in result.stderr


def test_production_passes_the_deployment_checks_when_configured(no_env_file):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={**PRODUCTION_ENV, **no_env_file}
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(DEVELOPMENT_SECRET_KEY, id="the development key"),
        pytest.param(
            "django-insecure-" + "q8#vN2$kL5@wR9!zT4^yU7&pX1*mB6" * 2, id="django-insecure"
        ),
        pytest.param("a" * 60, id="too few distinct characters"),
        pytest.param("k3y-x7Q!p9Lm2#vB8nR4tY6uW1", id="too short"),
    ],
)
def test_production_refuses_a_known_or_weak_secret_key(no_env_file, key):
    result = manage("check", env={**PRODUCTION_ENV, **no_env_file, "SECRET_KEY": key})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    "email",
    [
        pytest.param({}, id="no EMAIL_URL: the console"),
        pytest.param({"EMAIL_URL": "consolemail://"}, id="console"),
        pytest.param({"EMAIL_URL": "filemail:///tmp/mail"}, id="file"),
        pytest.param({"EMAIL_URL": "memorymail://"}, id="locmem"),
        pytest.param({"EMAIL_URL": "dummymail://"}, id="dummy"),
        pytest.param(
            {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
            id="EMAIL_BACKEND console",
        ),
    ],
)
def test_production_refuses_a_mail_backend_that_does_not_deliver(no_env_file, email):
    production = {k: v for k, v in PRODUCTION_ENV.items() if k != "EMAIL_URL"}

    result = manage("check", env={**production, **no_env_file, **email})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "EMAIL_URL" in result.stderr


def test_production_accepts_a_mail_providers_backend(no_env_file):
    production = {k: v for k, v in PRODUCTION_ENV.items() if k != "EMAIL_URL"}
    provider = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}

    result = manage(
        "shell",
        "--verbosity=0",
        "-c",
        "from django.conf import settings; print(settings.EMAIL_BACKEND)",
        env={**production, **no_env_file, **provider},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == provider["EMAIL_BACKEND"]


def test_production_reads_its_settings_from_the_env_file(tmp_path):
    env_file = tmp_path / "production.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in PRODUCTION_ENV.items()))

    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"ENV_FILE": str(env_file)})

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_environment_wins_over_the_env_file(tmp_path):
    env_file = tmp_path / "production.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in PRODUCTION_ENV.items()))

    result = manage("check", env={"ENV_FILE": str(env_file), "SECRET_KEY": DEVELOPMENT_SECRET_KEY})

    assert result.returncode != 0 and "development key" in result.stderr


def test_a_missing_env_file_is_refused_by_name(tmp_path):
    missing = tmp_path / "nowhere.env"

    result = manage("check", env={**PRODUCTION_ENV, "ENV_FILE": str(missing)})

    assert result.returncode != 0
    assert "ENV_FILE" in result.stderr and str(missing) in result.stderr


def test_check_deploy_reports_the_development_key_and_a_console_mail_backend(no_env_file):
    # Another settings module with DEBUG off and the embedded defaults: base.py's key, console.
    result = manage(
        "check",
        "--deploy",
        env={**no_env_file, "DEBUG": "false"},
        settings="loyalty.settings.local",
    )

    assert result.returncode != 0
    assert "loyalty.E001" in result.stderr and "development key" in result.stderr
    assert "loyalty.E002" in result.stderr and "console" in result.stderr


def test_check_deploy_reports_a_file_mail_backend(no_env_file):
    result = manage(
        "check",
        "--deploy",
        env={**no_env_file, **PRODUCTION_ENV, "EMAIL_URL": "filemail:///tmp/mail"},
        settings="loyalty.settings.local",
    )

    assert "loyalty.E002" in result.stderr and "filebased" in result.stderr
    assert "loyalty.E001" not in result.stderr


def test_check_deploy_warns_of_a_mail_provider_without_its_bounce_webhook(no_env_file):
    provider = {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend"}
    base = {**no_env_file, **PRODUCTION_ENV, **provider}

    unheard = manage("check", "--deploy", env=base, settings="loyalty.settings.local")
    heard = manage(
        "check",
        "--deploy",
        env={**base, "ANYMAIL_WEBHOOK_SECRET": "anymail:a-long-random-secret"},
        settings="loyalty.settings.local",
    )

    assert "loyalty.W001" in unheard.stderr and "ANYMAIL_WEBHOOK_SECRET" in unheard.stderr
    assert "loyalty.W001" not in heard.stderr
