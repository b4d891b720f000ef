"""The sandbox's point-in-time restores are real (bot/sandbox/restores.py, pg_proxy.py):
copies of a database taken over time, a restore to a moment gets the copy valid then as a
new database, and that database answers at the restored instance's own address under the
original database name, as a restored RDS instance does. Real PostgreSQL (the rig's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.sandbox.postgres import database_name
from bot.sandbox.restores import SINCE_EVER, PointInTime, restored_name

ADDRESS = "127.61.62.63"  # a loopback address of its own, as resolve() gives an endpoint


def users(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute('SELECT email FROM "User" ORDER BY id')]


def at_address(url: str, address: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"@{parts.hostname}:", f"@{address}:")
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture
def pitr(pg_server, pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL)')
        conn.execute("""INSERT INTO "User" (email) VALUES ('before@example.com')""")
    point = PointInTime(pg_server, database_name(pg_url), tmp_path, say=lambda _: None)
    yield point
    point.stop()
    for name in point.restored.values():
        pg_server.drop_database(name)


def test_a_restore_holds_the_data_of_its_moment_at_its_own_address(pitr, pg_url):
    pitr.take("first release", valid_from=SINCE_EVER)
    # Connected while the next copy is taken: pg_dump does not mind (TEMPLATE would).
    with psycopg.connect(pg_url, autocommit=True) as busy:
        busy.execute("""INSERT INTO "User" (email) VALUES ('after@example.com')""")
        between = datetime.now(UTC)
        later = pitr.take("after a sign-up", valid_from=between + timedelta(seconds=1))

    old = pitr.copy_at(between)
    assert old.why == "first release" and pitr.copy_at(datetime.now(UTC) + timedelta(1)) == later
    assert pitr.copy_at(datetime(2000, 1, 1, tzinfo=UTC)).why == "first release"

    port = urlsplit(pg_url).port
    name = pitr.restore("prod-recovery-1", ADDRESS, port, old)
    assert name == restored_name(database_name(pg_url), "prod-recovery-1")
    # The restored instance's address, the source's database name: the data of that moment.
    restored = at_address(pg_url, ADDRESS)
    assert users(restored) == ["before@example.com"]
    # The source and a second restore are untouched by it.
    assert users(pg_url) == ["before@example.com", "after@example.com"]
    pitr.restore("prod-recovery-2", "127.61.62.64", port, later)
    assert users(at_address(pg_url, "127.61.62.64")) == ["before@example.com", "after@example.com"]
    assert users(restored) == ["before@example.com"]

    # Writes through the restored address land in the restored database only.
    with psycopg.connect(restored, autocommit=True) as conn:
        conn.execute("""INSERT INTO "User" (email) VALUES ('restored@example.com')""")
    assert "restored@example.com" not in users(pg_url)
    # A wrong password is refused by the server itself: the relay only renames.
    wrong = restored.replace(urlsplit(restored).password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_restored_names_fit_postgresql_identifiers():
    name = restored_name("demo_production", "sandbox-production-recovery-" + "9" * 40)
    assert len(name.encode()) <= 63 and name.endswith("9" * 40)
    assert restored_name("demo_production", "X-1") == "demo_production__x_1"
