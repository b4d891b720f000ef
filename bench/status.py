"""Status at scale: the bot's migration status against `prisma migrate status` on the same
database and directory."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import median, write_history
from bot.prisma.connection import connect_prisma_url
from bot.prisma.status import StatusVerdict, migration_status
from bot.redaction import Secret
from bot.runbooks.status import assess
from bot.settings import Environment

SIZES = (100, 1000, 2000, 5000)
TARGET_SIZE = 2000
TARGET_RATIO = 0.05
REPEAT = 5


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return median(times), result


def run(pg, log) -> list[dict]:
    from tests.oracle import prisma_cli

    node_modules = None
    why_not = prisma_cli.missing_tools()
    if why_not is None:
        try:
            node_modules = prisma_cli.install()
        except prisma_cli.OracleSetupError as error:
            why_not = f"install failed: {str(error)[:200]}"
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        for size in SIZES:
            url = pg.create_database()
            root = Path(tmp) / f"project-{size}"
            if node_modules is not None:
                project = prisma_cli.PrismaProject(root, node_modules, url)
                directory = project.migrations_dir
            else:
                directory = root / "prisma" / "migrations"
            write_history(directory, url, size)
            with connect_prisma_url(url) as conn:
                status_s, status = _timed(
                    lambda c=conn, d=directory: migration_status(c, d), REPEAT
                )
            assert status.verdict == StatusVerdict.UP_TO_DATE, status.verdict
            assert len(status.applied) == size
            env = Environment("bench", False, database_url=Secret(url), migrations_dir=directory)
            assess_s, _ = _timed(lambda e=env: assess(e), REPEAT)
            prisma_s = None
            if node_modules is not None:
                project.status()  # warm the file cache and node's compile cache
                times = []
                for _ in range(2 if size <= TARGET_SIZE else 1):
                    began = time.perf_counter()
                    result = project.status()
                    times.append(time.perf_counter() - began)
                    if "Database schema is up to date!" not in result.output:
                        raise RuntimeError(f"prisma migrate status: {result.output[-500:]}")
                prisma_s = median(times)
            pg.drop_database(url.rsplit("/", 1)[1])
            row = {
                "migrations": size,
                "status_s": status_s,
                "assess_s": assess_s,
                "prisma_s": prisma_s,
                "ratio": assess_s / prisma_s if prisma_s else None,
            }
            log(
                f"status {size}: migration_status {status_s * 1000:.1f} ms, assess"
                f" {assess_s * 1000:.1f} ms, prisma "
                + (f"{prisma_s:.2f} s" if prisma_s else f"skipped ({why_not})")
            )
            results.append(row)
    return results
