"""The bot's diagnosis and reverse generation over whole public Prisma histories.

Not part of the tests or of ``python -m bench``: the histories are fetched outside the
repository (the ``fetch`` tool puts bare git copies under /work/.mirror, or set
ROLLBACK_BOT_MIRRORS), and a history whose copy is absent is skipped. Nothing of them is
committed; tests/data holds the licensed excerpt the suite uses.

    .venv/bin/python -m bench.histories                       # every history found
    .venv/bin/python -m bench.histories --only trigger --points random

For each history, on a PostgreSQL started like the tests start it:
- round trip: every migration applied as Prisma's native engine applies it, its reverse
  generated with the live catalog, run as a revert file runs and compared with the schema
  before it (exact, exact but for an enum value PostgreSQL cannot drop, not exact, failed;
  refused, with the reasons counted);
- failure points: every multi-statement migration failed at every statement (or at one
  random statement, ``--points random``), the statements before it applied one by one;
  every verdict counted exact, unknown or wrong; the recommendation followed: an undo must
  leave the schema exactly as before, a "resolve" must only be said of such a schema.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import psycopg

from tests.unit.sql.history_checks import (
    Tally,
    every_point,
    load_git_history,
    one_random_point,
    walk_history,
)

MIRRORS = Path(os.environ.get("ROLLBACK_BOT_MIRRORS", "/work/.mirror"))
# name -> (fetched copy under MIRRORS, its migrations directory)
HISTORIES = {
    "trigger": ("triggerdotdev+trigger.dev", "internal-packages/database/prisma/migrations"),
    "langfuse": ("langfuse+langfuse", "packages/shared/prisma/migrations"),
    "documenso": ("documenso+documenso", "packages/prisma/migrations"),
    "formbricks": ("formbricks+formbricks", "packages/database/migration"),
    "hoppscotch": ("hoppscotch+hoppscotch", "packages/hoppscotch-backend/prisma/migrations"),
    "umami": ("umami-software+umami", "prisma/migrations"),
}
SEED = 18


def available(only: set[str] | None) -> dict[str, list]:
    found = {}
    for name, (copy, directory) in HISTORIES.items():
        repo = MIRRORS / copy / "repo"
        if (only and name not in only) or not repo.exists():
            continue
        found[name] = load_git_history(repo, directory)
    return found


def check(url: str, name: str, history: list, points: str, log) -> dict:
    tally = Tally()
    choose = every_point if points == "all" else one_random_point(SEED)
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        walk_history(conn, history, tally, choose=choose)
    log(
        f"{name}: {tally.migrations} of {len(history)} migrations, {tally.failure_points}"
        f" failure points in {time.perf_counter() - began:.0f} s"
        + (f"; stopped at {tally.stopped}" if tally.stopped else "")
    )
    result = asdict(tally)
    # asdict() rebuilds a Counter from its items, which counts the pairs: keep the counts.
    result.update(recommended=dict(tally.recommended), refusals=dict(tally.refusals))
    return result


def report(results: dict[str, dict]) -> str:
    lines = [
        "| history | migrations | statements exact / unknown / wrong | undo exact / not / failed"
        " | resolve on a changed schema | reverses run exact / residue / not exact / failed"
        " | refused |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in results.items():
        lines.append(
            f"| {name} | {t['migrations']} | {t['statements_exact']} / {t['statements_unknown']}"
            f" / {t['statements_wrong']} | {t['undo_exact']} / {t['undo_inexact']} /"
            f" {t['undo_failed']} | {t['resolve_wrong']} | {t['reverse_exact']} /"
            f" {t['reverse_residue']} / {t['reverse_inexact']} / {t['reverse_failed']} |"
            f" {t['refused_migrations']} ({t['refused_only_enum_value']} only for an enum value) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.histories")
    parser.add_argument("--only", help="comma-separated history names")
    parser.add_argument("--points", choices=("all", "random"), default="all")
    parser.add_argument("--json", type=Path, help="write the tallies here")
    args = parser.parse_args(argv)
    histories = available(set(args.only.split(",")) if args.only else None)
    if not histories:
        print(f"no fetched history under {MIRRORS}: nothing to check")
        return 0
    from bot.sandbox.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        results = {}
        for name, history in histories.items():
            results[name] = check(server.create_database(name), name, history, args.points, _log)
            print(report({name: results[name]}), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
    finally:
        server.stop()
    print(report(results))
    for name, tally in results.items():
        print(f"\n## {name}\nrecommended: {tally['recommended']}\nrefusals: {tally['refusals']}")
        for kind, texts in tally["examples"].items():
            print(f"{kind}:\n  " + "\n  ".join(texts))
    return 0


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
