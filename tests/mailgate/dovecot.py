"""A private Dovecot (IMAP and POP3, plain and TLS) for the mail fetching tests.

`dovecot` is a session-scoped fixture (import `dovecot_fixture` into a test module to use
it): it writes a config into a temporary folder, starts `dovecot -F` on free loopback ports,
waits until it answers and stops it at the end. It never touches a system Dovecot (its own
base_dir, state_dir, log and config) and skips the tests when the binary is missing.

Every user name logs in with `Dovecot.password` and gets its own empty maildir on first login,
so each test uses a fresh account (`dovecot.new_user()`) and tests never see each other's mail.
The TLS listeners use a self-signed certificate for 127.0.0.1 made at start-up;
`Dovecot.ca_file` is that certificate, for clients that verify it.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Every command here runs fixed binaries with arguments built from constants and temp paths.
# ruff: noqa: S603, S607

INSTALL_HINT = "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)"


@dataclass
class Dovecot:
    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    ca_file: str
    root: Path
    password: str = "fetch-test-password"
    _users: list[str] = field(default_factory=list)

    def new_user(self) -> str:
        user = f"user-{uuid.uuid4().hex[:12]}"
        self._users.append(user)
        return user

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _version() -> tuple[int, ...]:
    out = subprocess.run(
        ["dovecot", "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    match = re.match(r"(\d+)\.(\d+)", out)
    return tuple(int(part) for part in match.groups()) if match else (0, 0)


def _users() -> tuple[str, str, str, str]:
    """(login user, internal user, mail uid, mail gid) for Dovecot's processes."""
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    if os.getuid() != 0:
        # Dovecot run by an ordinary user runs everything as that user.
        return me, me, me, group
    # Dovecot never gives root's uid to a mail user: run as root, it uses the system's `mail`
    # user for the mail and the users its package makes for the rest.
    mail = pwd.getpwnam("mail")
    return "dovenull", "dovecot", mail.pw_name, grp.getgrgid(mail.pw_gid).gr_name


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _config(root: Path, ports: dict[str, int], cert: Path, key: str) -> str:
    login_user, internal_user, mail_uid, mail_gid = _users()
    return f"""\
# Private Dovecot for the help desk's tests. Nothing here is shared with a system Dovecot.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
# Wrong passwords are a test case: answer them at once (the default waits 2 s, and more for
# every login from the same address after a failure: the "auth penalty", switched off below).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{root}/mail/%n
# Every user name exists, with one password; each test uses a new name.
passdb {{
  driver = static
  args = password=fetch-test-password nodelay=yes
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%n
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
"""


def _wait_for_greeting(port: int, process: subprocess.Popen, root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "dovecot.log").read_text(errors="replace") if root.exists() else ""
            raise RuntimeError(f"Dovecot exited with {process.returncode}:\n{log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(2)
            if s.recv(64).startswith(b"* OK"):
                return
        time.sleep(0.05)
    raise RuntimeError("Dovecot did not answer within 15 s")


@pytest.fixture(scope="session", name="dovecot")
def dovecot_fixture():
    binary = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )
    if binary is None:
        pytest.skip(INSTALL_HINT)
    version = _version()
    if version[:1] != (2,) or version >= (2, 4):
        # 2.4 changed the configuration language; this config is written for 2.3 (Debian 12).
        pytest.skip(f"The test Dovecot config is written for Dovecot 2.3, not {version}")
    root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
    # Dovecot's unprivileged processes must reach base_dir, and the mail user its folders.
    root.chmod(0o755)
    _login_user, _internal_user, mail_uid, mail_gid = _users()
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        shutil.chown(root / sub, mail_uid, mail_gid)
    ports = {name: _free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    cert, key = _certificate(root)
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, ports, cert, key))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_greeting(ports["imap"], process, root)
        yield Dovecot(
            host="127.0.0.1",
            imap_port=ports["imap"],
            imaps_port=ports["imaps"],
            pop3_port=ports["pop3"],
            pop3s_port=ports["pop3s"],
            ca_file=str(cert),
            root=root,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if not os.environ.get("KEEP_DOVECOT"):
            shutil.rmtree(root, ignore_errors=True)
