"""The sandbox's point-in-time recovery made real: when moto restores the production
instance (to a point in time or from a snapshot), a second PostgreSQL database is created
holding the production data as it was at that point, and the restored instance's endpoint
reaches it (bot/sandbox/pg_proxy.py), so verification, the switch and re-applying
migrations run against a database that really is the restored one.

How the data "as it was at time T" exists: the sandbox keeps copies of the production
database (pg_dump's custom format, in the sandbox's temp dir), each valid from the moment
of the change that produced it until the next copy's:
- after the demo's first two releases and their data: valid since before anything a
  person can pick (the demo's story is that they are old);
- after the release that failed mid-way: valid from just before it started;
- whenever a snapshot is created through moto (the runbook's backup step, /rollback
  snapshot): valid from then, and that snapshot's own copy;
- after every step the bot ran on production that succeeded: valid from then.
A restore to T creates a database from the copy valid at T (a snapshot restore from the
snapshot's copy). Why pg_dump and not CREATE DATABASE ... TEMPLATE for the copies:
TEMPLATE refuses a source database anyone is connected to, and the bot is connected to
production while it works; pg_dump reads one consistent MVCC snapshot of it whatever else is
connected, which is exactly "the data at that moment". The restored database is then
created empty from template0 and filled by pg_restore.

What this is not: RDS replays the write-ahead log to any second in the window; here a
change that no copy saw (made by hand with psql on the sandbox's PostgreSQL) is not in any
restore. The page says so (static/index.html, "What the sandbox simulates").
"""

from __future__ import annotations

import bisect
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.sandbox.pg_proxy import DatabaseProxy
from bot.sandbox.postgres import MAX_IDENTIFIER_BYTES, PostgresServer

SINCE_EVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Copy:
    valid_from: datetime
    path: Path
    why: str


class PointInTime:
    """Copies of one database over time, and the restored databases made from them."""

    def __init__(self, pg: PostgresServer, database: str, workdir: Path, say: Callable = print):
        self.pg, self.database, self.say = pg, database, say
        self.directory = workdir / "pitr-copies"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.copies: list[Copy] = []  # ordered by valid_from
        self.snapshots: dict[str, Copy] = {}
        self.restored: dict[str, str] = {}  # instance id -> database name
        self._proxies: list[DatabaseProxy] = []
        self._lock = threading.Lock()

    # --- copies ---------------------------------------------------------------------------

    def take(self, why: str, valid_from: datetime | None = None) -> Copy:
        """The database as it is now, kept as a copy valid from ``valid_from`` (now)."""
        with self._lock:
            valid_from = valid_from or datetime.now(UTC)
            path = self.directory / f"copy-{len(self.copies):04d}.dump"
            self._tool("pg_dump", "--format=custom", f"--file={path}", self.database)
            copy = Copy(valid_from, path, why)
            index = bisect.bisect_right([c.valid_from for c in self.copies], valid_from)
            self.copies.insert(index, copy)
            return copy

    def take_for_snapshot(self, snapshot_id: str) -> None:
        self.snapshots[snapshot_id] = self.take(f"snapshot {snapshot_id}")

    def copy_at(self, moment: datetime) -> Copy:
        """The copy valid at ``moment``: the last one valid from it or earlier."""
        with self._lock:
            earlier = [c for c in self.copies if c.valid_from <= moment]
            return earlier[-1] if earlier else self.copies[0]

    # --- restores -------------------------------------------------------------------------

    def restore(self, instance_id: str, address: str, port: int, copy: Copy) -> str:
        """A new database holding ``copy``, reached at address:port as self.database."""
        name = restored_name(self.database, instance_id)
        with self._lock:
            self.pg.drop_database(name)
            self.pg.create_database(name, template="template0")
            self._tool("pg_restore", "--no-owner", f"--dbname={name}", str(copy.path))
            proxy = DatabaseProxy(
                (address, port), (self.pg.host, self.pg.port), {self.database: name}
            )
            self._proxies.append(proxy)
            self.restored[instance_id] = name
        self.say(
            f"  PITR: restored instance {instance_id} ({address}:{port}) is database {name},"
            f" the data of {copy.why}"
        )
        return name

    def stop(self) -> None:
        with self._lock:
            for proxy in self._proxies:
                proxy.close()
            self._proxies.clear()

    def _tool(self, name: str, *args: str) -> None:
        """pg_dump / pg_restore of the server's own installation, as its superuser."""
        env = {"PGPASSWORD": self.pg.password, "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
        connection = [
            "--host",
            self.pg.host,
            "--port",
            str(self.pg.port),
            "--username",
            self.pg.user,
        ]
        subprocess.run(
            [str(self.pg.bin_dir / name), *connection, *args],
            check=True,
            capture_output=True,
            env=env,
            timeout=120,
        )


def restored_name(database: str, instance_id: str) -> str:
    """demo_production + sandbox-production-pitr-1 -> demo_production__sandbox_production_pitr_1
    (PostgreSQL truncates identifiers past 63 bytes; the instance id's end is what differs)."""
    suffix = re.sub(r"[^a-z0-9_]", "_", instance_id.lower())
    name = f"{database}__{suffix}"
    return name if len(name) <= MAX_IDENTIFIER_BYTES else name[-MAX_IDENTIFIER_BYTES:]
