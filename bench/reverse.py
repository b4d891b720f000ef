"""Reverse generation on a 5,000-statement migration (bot.sql.reverse.reverse_script)."""

from __future__ import annotations

import time

from bench.common import median

STATEMENTS = 5000
TARGET_S = 1.0


def script(statements: int = STATEMENTS) -> str:
    """A long migration mixing what Prisma generates: tables, columns, indexes, NOT NULL,
    renames, foreign keys (five statements per table)."""
    parts = []
    for i in range(statements):
        t, kind = i // 5, i % 5
        if kind == 0:
            parts.append(
                f'CREATE TABLE "T{t}" ("id" SERIAL NOT NULL, "name" TEXT,'
                f' "ref" INTEGER, CONSTRAINT "T{t}_pkey" PRIMARY KEY ("id"));'
            )
        elif kind == 1:
            parts.append(f'ALTER TABLE "T{t}" ADD COLUMN "email" TEXT;')
        elif kind == 2:
            parts.append(f'CREATE UNIQUE INDEX "T{t}_email_key" ON "T{t}"("email");')
        elif kind == 3:
            parts.append(f'ALTER TABLE "T{t}" ALTER COLUMN "name" SET NOT NULL;')
        else:
            parts.append(f'ALTER TABLE "T{t}" RENAME COLUMN "ref" TO "refId";')
    return "\n\n".join(parts) + "\n"


def run(log, profile: bool = True) -> dict:
    from bot.sql.reverse import reverse_script

    sql = script()
    times, plan = [], None
    for _ in range(3):
        began = time.perf_counter()
        plan = reverse_script(sql)
        times.append(time.perf_counter() - began)
    seconds = median(times)
    result = {"statements": STATEMENTS, "steps": len(plan.steps), "seconds": seconds}
    log(f"reverse: {STATEMENTS} statements -> {len(plan.steps)} steps in {seconds:.3f} s")
    if profile and seconds > TARGET_S:
        result["profile"] = _profile(reverse_script, sql)
    return result


def _profile(fn, sql: str) -> str | None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    profiler = Profiler(interval=0.001)
    profiler.start()
    fn(sql)
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)
