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
    times, cpu, plan = [], [], None
    for _ in range(3):
        plan = None  # the previous plan freed first, as between two requests
        began, began_cpu = time.perf_counter(), time.process_time()
        plan = reverse_script(sql)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    seconds = median(times)
    # CPU time too: on a shared machine the wall time says as much about the other loads.
    result = {
        "statements": STATEMENTS,
        "steps": len(plan.steps),
        "seconds": seconds,
        "cpu_s": median(cpu),
    }
    log(
        f"reverse: {STATEMENTS} statements -> {len(plan.steps)} steps in {seconds:.3f} s"
        f" (CPU {result['cpu_s']:.3f} s)"
    )
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


# ------------------------------------------------------------- a long history

HISTORY_MIGRATIONS = 820
HISTORY_TARGET_S = 0.2


def history(migrations: int = HISTORY_MIGRATIONS) -> list[str]:
    """A Prisma-like history (trigger.dev's has 820 migrations, 2,309 statements): a table
    every tenth migration, then columns, indexes, foreign keys, NOT NULL, defaults, renames,
    enum values and drops on the tables made so far."""
    scripts = ["CREATE TYPE \"Status\" AS ENUM ('NEW');\n"]
    for i in range(1, migrations):
        t = i // 10
        if i % 10 == 0:
            scripts.append(
                f'CREATE TABLE "T{t}" ("id" TEXT NOT NULL, "name" TEXT, "status" "Status"'
                f" NOT NULL DEFAULT 'NEW', \"createdAt\" TIMESTAMP(3) NOT NULL DEFAULT"
                f' CURRENT_TIMESTAMP, CONSTRAINT "T{t}_pkey" PRIMARY KEY ("id"));\n'
                f'CREATE UNIQUE INDEX "T{t}_name_key" ON "T{t}"("name");\n'
            )
            continue
        kind, table = i % 10, f"T{max(t - 1, 0)}" if i % 10 < 3 and t > 0 else f"T{t}"
        scripts.append(_history_step(kind, table, i))
    return scripts


def _history_step(kind: int, table: str, i: int) -> str:
    column = f"c{i}"
    steps = {
        1: f'ALTER TABLE "{table}" ADD COLUMN "{column}" TEXT;\n'
        f'ALTER TABLE "{table}" ADD COLUMN "{column}b" BOOLEAN NOT NULL DEFAULT false;\n'
        f'CREATE INDEX "{table}_{column}_idx" ON "{table}"("{column}", "{column}b");\n',
        2: f'ALTER TABLE "{table}" ADD COLUMN "{column}" INTEGER NOT NULL DEFAULT 0;\n'
        f'CREATE INDEX "{table}_{column}_idx" ON "{table}"("{column}");\n',
        3: f'ALTER TABLE "{table}" ADD COLUMN "ref{i}" TEXT;\n'
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_ref{i}_fkey" FOREIGN KEY ("ref{i}")'
        f' REFERENCES "{table}"("id") ON DELETE SET NULL ON UPDATE CASCADE;\n',
        4: f'UPDATE "{table}" SET "name" = "id" WHERE "name" IS NULL;\n'
        f'ALTER TABLE "{table}" ALTER COLUMN "name" SET NOT NULL;\n',
        5: f"ALTER TYPE \"Status\" ADD VALUE 'S{i}';\n"
        f'ALTER TABLE "{table}" ADD COLUMN "{column}" TIMESTAMP(3);\n',
        6: f'ALTER TABLE "{table}" ADD COLUMN "{column}" TEXT;\n'
        f'ALTER TABLE "{table}" RENAME COLUMN "{column}" TO "{column}_renamed";\n',
        7: f'ALTER TABLE "{table}" ALTER COLUMN "name" DROP NOT NULL;\n'
        f'ALTER TABLE "{table}" ALTER COLUMN "name" SET DEFAULT \'x\';\n',
        8: f'DROP INDEX IF EXISTS "{table}_name_key";\n'
        f'CREATE UNIQUE INDEX "{table}_name_key" ON "{table}"("name", "id");\n',
        9: f'ALTER TABLE "{table}" ADD COLUMN "{column}" JSONB;\n'
        f'ALTER TABLE "{table}" DROP COLUMN "{column}";\n',
    }
    return steps[kind]


def run_real_history(log) -> dict | None:
    """The same on trigger.dev's own 820 migrations, when a fetched copy is there
    (bench/histories.py); None otherwise."""
    from bench.histories import available
    from bot.sql.model_cache import clear_cache
    from bot.sql.reverse import reverse_script

    found = available({"trigger"}).get("trigger")
    if not found:
        return None
    scripts = [m.sql for m in found]
    earlier, last = scripts[:-1], scripts[-1]
    clear_cache()
    cold = _seconds(lambda: reverse_script(last, earlier_sql=earlier))
    warm = median([_seconds(lambda: reverse_script(last, earlier_sql=earlier)) for _ in range(5)])
    log(
        f"trigger.dev: {len(scripts)} migrations: reverse of the last cold {cold:.3f} s,"
        f" warm {warm:.4f} s"
    )
    return {"migrations": len(scripts), "cold_s": cold, "warm_s": warm}


def run_history(log) -> dict:
    """The reverse of the last migration of a long history: once cold (the history's model
    built), then warm (cached by the scripts' checksums), then for a migration added on top
    (only that one replayed), and the diagnosis timeline, which reuses the same model."""
    from bot.sql.model_cache import clear_cache
    from bot.sql.reverse import reverse_script
    from bot.sql.timeline import migration_timeline

    scripts = history()
    earlier, last = scripts[:-1], scripts[-1]
    clear_cache()
    cold = _seconds(lambda: reverse_script(last, earlier_sql=earlier))
    warm = median([_seconds(lambda: reverse_script(last, earlier_sql=earlier)) for _ in range(5)])
    grown = _seconds(
        lambda: reverse_script('ALTER TABLE "T1" ADD COLUMN "z" TEXT;\n', earlier_sql=scripts)
    )
    timeline = median(
        [
            _seconds(lambda: migration_timeline(last, default_schema="public", earlier_sql=earlier))
            for _ in range(5)
        ]
    )
    statements = sum(s.count(";\n") for s in scripts)
    real = run_real_history(log)
    result = {
        "real": real,
        "migrations": len(scripts),
        "statements": statements,
        "cold_s": cold,
        "warm_s": warm,
        "grown_s": grown,
        "timeline_s": timeline,
    }
    log(
        f"history: {len(scripts)} migrations ({statements} statements): reverse of the last"
        f" cold {cold:.3f} s, warm {warm:.4f} s; one migration more {grown:.3f} s;"
        f" diagnosis timeline warm {timeline:.4f} s"
    )
    return result


def _seconds(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began
