#!/usr/bin/env python3
"""Run the help desk from a clone: `python3 dev.py start`, `python3 dev.py test`.

Standard library only; needs Python 3.11+ and nothing else. Commands:

    start [--port N]     set up .venv, migrate, load demo data, then run the Celery worker
                         (with beat) and the development server on 127.0.0.1:8000
    test [pytest args]   set up .venv and run the test suite (pytest -n auto); the database is
                         DATABASE_URL (SQLite when unset; the mysql extra is installed for mysql://)
    lint                 ruff check . and ruff format --check .
    manage [args]        manage.py inside .venv, with DEBUG=true unless DEBUG is set
"""
# Every command run here is built from constants and the caller's own arguments:
# ruff: noqa: S603

import sys

if sys.version_info < (3, 11):  # noqa: UP036 (this check is for whoever runs an older Python)
    sys.exit(
        f"dev.py needs Python 3.11 or newer; this is Python {sys.version.split()[0]} "
        f"({sys.executable}).\n"
        "Install Python 3.11+ and run dev.py with it, e.g. `python3.11 dev.py start`."
    )

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VAR = ROOT / "var"
STAMP = VENV / ".dev-py-install.json"
WINDOWS = os.name == "nt"
VENV_PYTHON = VENV / ("Scripts/python.exe" if WINDOWS else "bin/python")
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Test workers: xdist's "auto" means one per CPU; each worker builds its own test database,
# which is slow on PostgreSQL and MariaDB, so "auto" is capped unless the caller sets it.
MAX_TEST_WORKERS = 4
HANG_REPORT_AFTER = 120  # seconds

DEMO_LOGINS = (
    ("Admin (superuser)", "admin@example.com", "demo-admin-1"),
    ("Agent", "agent@example.com", "demo-agent-1"),
    ("Customer", "customer@example.com", "demo-customer-1"),
)


class DevError(Exception):
    """A failure with a message for the user (printed without a traceback)."""


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


# --- The virtual environment ----------------------------------------------------------------


def _venv_python_version() -> tuple[int, int] | None:
    """The (major, minor) of .venv's Python, or None when .venv has no working Python."""
    if not VENV_PYTHON.exists():
        return None
    try:
        result = subprocess.run(
            [str(VENV_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.split()
    return int(major), int(minor)


def _venv_create() -> None:
    import venv

    version = _venv_python_version()
    if version is not None and version >= (3, 11):
        return
    if VENV.exists():
        reason = "is broken" if version is None else f"uses Python {version[0]}.{version[1]}"
        say(f".venv {reason}; recreating it with {sys.executable}")
    else:
        say(f"creating .venv with Python {sys.version.split()[0]} ({sys.executable})")
    try:
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise DevError(
            f"could not create .venv ({exc}).\n"
            "On Debian/Ubuntu the venv module needs the python3-venv package "
            "(e.g. `apt-get install python3.11-venv`)."
        ) from exc


def _install_key() -> str:
    """What the installed packages depend on: pyproject.toml and the Python in .venv."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(repr(_venv_python_version()).encode())
    return digest.hexdigest()


def venv_ensure(extras: set[str]) -> None:
    """Create .venv if needed and install the project (editable) with `extras` into it.

    Skipped when pyproject.toml is unchanged since the last install of these extras."""
    _venv_create()
    key = _install_key()
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        stamp = {}
    installed = set(stamp.get("extras", [])) if stamp.get("key") == key else set()
    if stamp.get("key") == key and extras <= installed:
        return
    wanted = sorted(extras | installed)
    target = f".[{','.join(wanted)}]" if wanted else "."
    say(f"installing {target} into .venv (pyproject.toml changed or first run)")
    command = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    result = subprocess.run([*command, "-e", target], cwd=ROOT, check=False)
    if result.returncode != 0:
        hint = ""
        if "mysql" in wanted:
            hint = (
                "\nThe mysql extra builds mysqlclient, which needs a C compiler, the MariaDB "
                "client headers and pkg-config\n(Debian/Ubuntu: `apt-get install gcc "
                "libmariadb-dev pkg-config`; macOS: `brew install mysql-client pkg-config`)."
            )
        raise DevError(f"installing {target} failed (pip exit code {result.returncode}).{hint}")
    STAMP.write_text(json.dumps({"key": key, "extras": wanted}))


def var_dirs_ensure() -> None:
    for folder in ("media", "static", "celery/queue", "celery/processed", "celery/control"):
        (VAR / folder).mkdir(parents=True, exist_ok=True)


def child_env(*, debug: bool) -> dict[str, str]:
    env = dict(os.environ)
    if debug:
        env.setdefault("DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("PYTHONHOME", None)
    return env


def manage(args: list[str], env: dict[str, str]) -> int:
    return subprocess.run(
        [str(VENV_PYTHON), "manage.py", *args], cwd=ROOT, env=env, check=False
    ).returncode


def manage_or_fail(args: list[str], env: dict[str, str]) -> None:
    code = manage(args, env)
    if code != 0:
        raise DevError(f"`manage.py {' '.join(args)}` failed (exit code {code}).")


# --- Commands -------------------------------------------------------------------------------


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _banner(url: str) -> str:
    width = max(len(email) for _, email, _ in DEMO_LOGINS)
    pwidth = max(len(password) for _, _, password in DEMO_LOGINS)
    lines = [
        "",
        "=" * 72,
        f"  The help desk is running at {url}/",
        f"    customer portal  {url}/",
        f"    staff pages      {url}/scp/",
        f"    Django admin     {url}/admin/",
        "  Demo logins:",
        *(
            f"    {email.ljust(width)}  {password.ljust(pwidth)}  {label}"
            for label, email, password in DEMO_LOGINS
        ),
        "  Stop with Ctrl-C.",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


def _announce_when_up(port: int, url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        if _port_in_use(port):
            print(_banner(url), flush=True)
            return
        time.sleep(0.5)


# (name, process, seconds to stop) of the processes `start` runs, in start order.
_RUNNING: list[tuple[str, subprocess.Popen[bytes], float]] = []


def _stop(name: str, process: subprocess.Popen[bytes], grace: float) -> None:
    """Stop `process` and everything in its process group (the runserver's autoreloader
    child, the worker's embedded beat): SIGTERM to the leader, then SIGKILL to the group."""
    if process.poll() is None:
        say(f"stopping the {name}")
        process.terminate()  # the worker's warm shutdown; Django's reloader exits on SIGTERM
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if not WINDOWS:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_start(args: list[str]) -> int:
    port = DEFAULT_PORT
    if args[:1] == ["--port"] and len(args) == 2 and args[1].isdigit():
        port = int(args[1])
    elif args:
        raise DevError("usage: python3 dev.py start [--port N]")
    if _port_in_use(port):
        raise DevError(
            f"something already answers on {HOST}:{port}; stop it or use "
            "`python3 dev.py start --port N`."
        )
    url = f"http://{HOST}:{port}"

    venv_ensure({"dev"})
    var_dirs_ensure()
    env = child_env(debug=True)
    env.setdefault("SITE_URL", url)
    say("migrating the database")
    manage_or_fail(["migrate", "--noinput"], env)
    say("loading demo data (skipped when tickets exist)")
    manage_or_fail(["demo_data"], env)

    # The worker and the server each run in a session of their own, so that dev.py alone
    # decides when they stop: on Ctrl-C, SIGTERM or SIGHUP here, or when the server exits.
    own_session = {"start_new_session": True} if not WINDOWS else {}
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, _raise_interrupt)
    try:
        return _run_worker_and_server(port, url, env, own_session)
    except KeyboardInterrupt:
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if signum is not None:
                signal.signal(signum, signal.SIG_IGN)
        for name, process, grace in reversed(_RUNNING):
            _stop(name, process, grace)


def _run_worker_and_server(
    port: int, url: str, env: dict[str, str], popen_options: dict[str, bool]
) -> int:
    say("starting the Celery worker with beat")
    worker = subprocess.Popen(
        [
            str(VENV_PYTHON),
            "-m",
            "celery",
            "-A",
            "helpdesk",
            "worker",
            "--beat",
            "--loglevel=INFO",
            "--pool=solo",
            "--concurrency=1",
            "--schedule",
            str(Path("var") / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        **popen_options,
    )
    _RUNNING.append(("Celery worker", worker, 20))
    server = subprocess.Popen(
        [str(VENV_PYTHON), "manage.py", "runserver", f"{HOST}:{port}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        **popen_options,
    )
    _RUNNING.append(("development server", server, 10))
    threading.Thread(target=_announce_when_up, args=(port, url, server), daemon=True).start()
    code = server.wait()
    say(f"the development server exited (code {code})")
    return code


def _has_worker_option(args: list[str]) -> bool:
    for i, arg in enumerate(args):
        if arg in ("-n", "--numprocesses", "--dist") or arg.startswith(("-n", "--numprocesses=")):
            return True
        if arg == "-p" and i + 1 < len(args) and args[i + 1] == "no:xdist":
            return True
        if arg == "-pno:xdist":
            return True
    return False


def cmd_test(args: list[str]) -> int:
    extras = {"dev"}
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("mysql"):
        extras.add("mysql")
    venv_ensure(extras)
    var_dirs_ensure()
    env = child_env(debug=False)
    # pyproject.toml names the test settings; a DJANGO_SETTINGS_MODULE in the shell would win.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.setdefault("PYTEST_XDIST_AUTO_NUM_WORKERS", str(min(os.cpu_count() or 1, MAX_TEST_WORKERS)))
    # A test still running after this many seconds gets every thread's stack printed, so a
    # hang shows where it is (the test goes on; later -o options override this one).
    command = [str(VENV_PYTHON), "-m", "pytest", "-o", f"faulthandler_timeout={HANG_REPORT_AFTER}"]
    if not _has_worker_option(args):
        command += ["-n", "auto"]
    engine = database_url.split(":", 1)[0] if database_url else "sqlite (default)"
    say(f"running the tests on {engine}: pytest {' '.join(command[5:] + args)}")
    return subprocess.run([*command, *args], cwd=ROOT, env=env, check=False).returncode


def cmd_lint(args: list[str]) -> int:
    if args:
        raise DevError("usage: python3 dev.py lint")
    venv_ensure({"dev"})
    ruff = [str(VENV_PYTHON), "-m", "ruff"]
    failed = []
    for step in (["check", "."], ["format", "--check", "."]):
        say(f"ruff {' '.join(step)}")
        if subprocess.run([*ruff, *step], cwd=ROOT, check=False).returncode != 0:
            failed.append(f"ruff {' '.join(step)}")
    if failed:
        say("failed: " + "; ".join(failed) + " (`ruff check --fix .` and `ruff format .` help)")
        return 1
    return 0


def cmd_manage(args: list[str]) -> int:
    venv_ensure({"dev"})
    var_dirs_ensure()
    return manage(args, child_env(debug=True))


COMMANDS = {"start": cmd_start, "test": cmd_test, "lint": cmd_lint, "manage": cmd_manage}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"], ["help"]) else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except DevError as exc:
        print(f"dev.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
