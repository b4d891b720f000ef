"""The PostgreSQL half of the rig does what the rest of the suite relies on."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.rig.postgres import (
    TEMPLATE_DB,
    PostgresRigError,
    PostgresServer,
    _choose_install,
    database_name,
)


def _scalar(url: str, query: str) -> object:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(query).fetchone()[0]


def _process_gone(pid: int) -> bool:
    # A postmaster reparented to a pid 1 that reaps lazily may linger as a zombie for a
    # moment after it exited; a zombie runs nothing and holds no port.
    stat = Path(f"/proc/{pid}/stat")
    if sys.platform.startswith("linux"):
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_server_is_a_real_postgresql(pg_server: PostgresServer, pg_url: str) -> None:
    version = _scalar(pg_url, "SELECT version()")
    assert isinstance(version, str) and version.startswith("PostgreSQL ")
    # The version the rig reported (from `postgres --version`) is the one answering.
    assert version.startswith(f"PostgreSQL {pg_server.version.split()[0]} ")
    assert pg_server.kind in ("system", "embedded")
    assert pg_server.version_num >= 130000  # DROP DATABASE ... WITH (FORCE)
    assert _scalar(pg_url, "SELECT current_user") == "postgres"
    assert _scalar(pg_url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True


def test_url_shape(pg_server: PostgresServer, pg_url: str) -> None:
    parts = urlsplit(pg_url)
    assert parts.scheme == "postgresql"
    assert (parts.hostname, parts.port) == ("127.0.0.1", pg_server.port)
    assert (parts.username, parts.password) == ("postgres", pg_server.password)
    assert database_name(pg_url) == _scalar(pg_url, "SELECT current_database()")
    assert pg_server.url() == pg_server.url("postgres")
    assert pg_server.url().endswith(f"@127.0.0.1:{pg_server.port}/postgres")
    # The password must be a real secret (the suite greps Slack/logs for it) and never
    # appear in the object's repr (pytest prints reprs on failures).
    assert len(pg_server.password) >= 24
    assert pg_server.password not in repr(pg_server)


def test_listens_on_127_0_0_1_only(pg_server: PostgresServer, pg_url: str) -> None:
    assert _scalar(pg_url, "SHOW listen_addresses") == "127.0.0.1"
    assert str(_scalar(pg_url, "SELECT inet_server_addr()")) == "127.0.0.1"
    # 127.0.0.2 is loopback on Linux too, but nothing listens there; nor on ::1.
    for family, addr in ((socket.AF_INET, "127.0.0.2"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            with pytest.raises(OSError):
                sock.connect((addr, pg_server.port))


def test_settings_for_speed_and_safety(pg_url: str, pg_server: PostgresServer) -> None:
    expected = {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "password_encryption": "scram-sha-256",
        "unix_socket_directories": str(pg_server.socket_dir),
    }
    with psycopg.connect(pg_url) as conn:
        for name, value in expected.items():
            assert conn.execute(f"SHOW {name}").fetchone()[0] == value, name
        methods = {row[0] for row in conn.execute("SELECT auth_method FROM pg_hba_file_rules")}
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'"
        ).fetchone()[0]
    assert methods == {"scram-sha-256"}  # no trust, no md5, anywhere
    assert stored.startswith("SCRAM-SHA-256$")


def test_wrong_or_missing_password_is_refused(pg_server: PostgresServer) -> None:
    base = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres connect_timeout=10"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"{base} password=not-{pg_server.password}")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(base + " password=")
    # The unix socket is no back door either.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            f"host={pg_server.socket_dir} port={pg_server.port} user=postgres dbname=postgres"
            " password="
        )
    with psycopg.connect(f"{base} password={pg_server.password}") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_fresh_database(pg_url: str, round_: int) -> None:
    # Both rounds check, then leave a table behind: whichever runs second fails if
    # databases were shared or the leftovers leaked into the template.
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('public.leftover')").fetchone()[0] is None
        user_tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')"
        ).fetchone()[0]
        assert user_tables == 0
        conn.execute("CREATE TABLE leftover (round int)")
        conn.execute("INSERT INTO leftover VALUES (%s)", (round_,))


def test_databases_are_distinct_and_cloned_from_the_template(pg_server: PostgresServer) -> None:
    first, second = pg_server.create_database(), pg_server.create_database()
    try:
        assert database_name(first) != database_name(second)
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
        assert _scalar(second, "SELECT to_regclass('public.only_here')") is None
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            template = conn.execute(
                "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s",
                (TEMPLATE_DB,),
            ).fetchone()
        assert template == (True, False)
    finally:
        pg_server.drop_database(database_name(first))
        pg_server.drop_database(database_name(second))


def test_create_database_with_a_chosen_name(pg_server: PostgresServer) -> None:
    name = f"Chosen-{uuid.uuid4().hex[:8]}"  # mixed case and a dash: needs quoting
    url = pg_server.create_database(name)
    try:
        assert _scalar(url, "SELECT current_database()") == name
    finally:
        pg_server.drop_database(name)
    with pytest.raises(ValueError, match="63 bytes"):
        pg_server.create_database("x" * 64)


def test_drop_database_with_open_connections(pg_server: PostgresServer) -> None:
    url = pg_server.create_database()
    name = database_name(url)
    holder = psycopg.connect(url, autocommit=True)
    idle_in_tx = psycopg.connect(url)
    idle_in_tx.execute("SELECT 1")  # leaves a transaction open
    try:
        pg_server.drop_database(name)
        with psycopg.connect(pg_server.url()) as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert left.fetchone()[0] == 0
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    finally:
        holder.close()
        idle_in_tx.close()
    pg_server.drop_database(name)  # IF EXISTS: a second drop is harmless


def test_choice_can_be_forced() -> None:
    with pytest.raises(PostgresRigError, match="must be 'system' or 'embedded'"):
        _choose_install("bogus")
    if os.geteuid() == 0:
        for kind in ("system", "embedded"):
            try:
                install = _choose_install(kind)
            except PostgresRigError:
                continue
            # postgres refuses to run as root, so the rig must have picked someone else.
            assert install.run_as not in (None, "root")


def _available(kind: str) -> bool:
    try:
        _choose_install(kind)
    except PostgresRigError:
        return False
    return True


@pytest.mark.parametrize("kind", ["system", "embedded"])
def test_start_and_stop_leave_nothing_behind(kind: str) -> None:
    if not _available(kind):
        pytest.skip(f"no {kind} PostgreSQL here")
    server = PostgresServer(kind)
    server.start()
    try:
        assert server.kind == kind
        root = server.root
        assert root is not None
        pid = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
        assert (
            str(_scalar(server.url(), "SHOW server_version")).split()[0]
            == (server.version.split()[0])
        )
        url = server.create_database()
        holder = psycopg.connect(url)  # an open client must not keep the server alive
    finally:
        server.stop()
    holder.close()
    assert _process_gone(pid)
    assert not root.exists()
    with socket.socket() as sock:
        sock.settimeout(2)
        with pytest.raises(OSError):
            sock.connect(("127.0.0.1", server.port))
    server.stop()  # idempotent
