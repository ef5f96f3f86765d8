"""The production settings: refuse to start without their environment, pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "k3y-" + "x7Q!p9Lm2#vB8nR4tY6uW1eZ5aS0dF3gH" * 2,
    "ALLOWED_HOSTS": "loyalty.example.nl",
    "DATABASE_URL": "sqlite:////tmp/production-check.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def manage(*args, env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "loyalty.settings.production", **env},
        timeout=120,
    )


def test_production_refuses_to_start_and_names_what_is_missing():
    result = manage("check", env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr and "DATABASE_URL" in result.stderr


def test_production_passes_the_deployment_checks_when_configured():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
