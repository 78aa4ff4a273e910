"""`manage.py mailgate parse`: JSON or a summary per file, exit 65 on unparsable mail, no DB.

None of these tests is marked `django_db`: pytest-django refuses any database access in them,
so a query anywhere in the command would fail the test. The subprocess tests also point
DATABASE_URL at a database that cannot be opened.
"""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

REPO = Path(__file__).resolve().parents[2]
OWN_SAMPLE = Path(__file__).resolve().parent / "samples" / "out-of-office.eml"
KEYS = {
    "file", "from_email", "from_name", "to", "cc", "reply_to", "subject", "message_id",
    "in_reply_to", "references", "date", "body_text", "body_html", "attachments", "auto_reply",
    "bounce", "bounce_recipients", "errors",
}  # fmt: skip


@pytest.fixture
def garbage(tmp_path):
    path = tmp_path / "garbage.eml"
    path.write_bytes(b"\x00\x01 this is not an email")
    return path


def run_command(*args):
    out, err = StringIO(), StringIO()
    call_command("mailgate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manage(*args, stdin=b""):
    env = {
        **os.environ,
        "DEBUG": "true",
        "ENV_FILE": "/dev/null",
        "DATABASE_URL": "sqlite:////nonexistent-directory/helpdesk.sqlite3",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py's own default settings
    return subprocess.run(  # noqa: S603 - fixed argument list, our own manage.py
        [sys.executable, "manage.py", "mailgate", *map(str, args)],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_json_output_has_one_object_per_file_with_the_keys():
    out, _err = run_command("parse", OWN_SAMPLE, OWN_SAMPLE, "--json")
    objects = [json.loads(line) for line in out.splitlines()]
    assert len(objects) == 2
    data = objects[0]
    assert data.keys() >= KEYS
    assert data["file"] == str(OWN_SAMPLE)
    assert data["from_email"] == "ann@example.net"
    assert data["auto_reply"] is True
    assert data["date"] == "2025-03-03T08:15:01+00:00"


def test_a_garbage_file_gives_an_error_object_and_exit_code_65(garbage):
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("mailgate", "parse", garbage, OWN_SAMPLE, "--json", stdout=out)
    assert caught.value.returncode == 65
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"file": str(garbage), "error": "no header found: this is not an email message"}
    assert second["subject"].startswith("Automatic reply:")  # the good file still printed


def test_max_size_refuses_large_messages():
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("mailgate", "parse", OWN_SAMPLE, "--json", "--max-size", "100", stdout=out)
    (data,) = (json.loads(line) for line in out.getvalue().splitlines())
    assert data["error"].startswith("message is ") and "the limit is 100 bytes" in data["error"]


def test_summary_output_is_readable():
    out, _err = run_command("parse", OWN_SAMPLE)
    assert "From:        Ann Example <ann@example.net>" in out
    assert "Flags:       auto-reply" in out
    assert "I am out of the office until 10 March" in out


def test_missing_subcommand_is_an_error():
    with pytest.raises(CommandError):
        call_command("mailgate")


def test_from_the_shell_exit_code_65_and_no_database(garbage):
    result = manage("parse", "--json", garbage, OWN_SAMPLE)
    assert result.returncode == 65, result.stderr
    lines = result.stdout.decode().splitlines()
    assert json.loads(lines[0])["error"]
    assert json.loads(lines[1])["from_email"] == "ann@example.net"
    assert b"could not be parsed" in result.stderr


def test_from_the_shell_success_reads_stdin_and_exits_0():
    result = manage("parse", "--json", "-", stdin=OWN_SAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["file"], data["in_reply_to"]) == ("-", "<ticket-104233-1@example.com>")


def test_from_the_shell_an_unreadable_file_exits_66(tmp_path):
    result = manage("parse", tmp_path / "missing.eml")
    assert result.returncode == 66
    assert b"cannot read the file" in result.stderr
