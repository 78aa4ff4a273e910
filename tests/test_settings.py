"""The process refuses unsafe production settings and passes Django's deployment checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return python("manage.py", *args, **env)


def python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing from the test settings or a developer's .env leaks in.
    environment = {"PATH": os.environ["PATH"], "ENV_FILE": os.devnull, **env}
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [sys.executable, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_refuses_to_serve_without_a_secret_key():
    production = {"DEBUG": "false", "SECRET_KEY": "", "ALLOWED_HOSTS": "helpdesk.example.com"}
    web = python(
        "-c", "import helpdesk.wsgi", DJANGO_SETTINGS_MODULE="helpdesk.settings.base", **production
    )
    assert web.returncode != 0
    assert "SECRET_KEY is not set" in web.stderr
    check = manage("check", "--deploy", **production)
    assert check.returncode != 0
    assert "SECRET_KEY is not set" in check.stderr


def test_commands_that_sign_nothing_run_with_no_configuration():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_production_settings_pass_the_deployment_checks():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="helpdesk.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_runs_without_any_configuration():
    result = manage("check", DEBUG="true", SECRET_KEY="")
    assert result.returncode == 0, result.stderr


def test_the_worker_refuses_to_start_without_a_secret_key():
    result = python(
        "-m", "celery", "-A", "helpdesk", "worker", "--pool=solo",
        DEBUG="false", SECRET_KEY="", CELERY_BROKER_URL="memory://",
    )  # fmt: skip
    assert result.returncode == 1
    assert "SECRET_KEY is not set" in result.stderr
