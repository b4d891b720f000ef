"""PITR's re-apply analysis (bot/runbooks/pitr/reapply_analysis.py) on a real history:
trigger.dev's migrations deployed by the bot up to 2024-01-11 on a real PostgreSQL, one
personal access token written, and the next five pending, as on a restored instance. Each
is classed with revert's analysis and the rows counted there; the one that drops the
token's column is data-losing, with its count and squawk's finding."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from bot.prisma.deploy import deploy
from bot.prisma.status import migration_status
from bot.runbooks.pitr.reapply_analysis import (
    DATA_LOSING,
    REVERSIBLE,
    analyse,
    earlier_scripts,
)

TRIGGER_DEV = Path(__file__).parents[1] / "data" / "trigger.dev" / "migrations"
DROPS_TOKEN = "20240111144844_encrypted_token_now_json_and_added_obfuscated_token_column"
HASHED_TOKEN = "20240111151921_added_hashed_token_column_which_will_be_used_for_search"


def _copy(names: list[str], into: Path) -> None:
    for name in names:
        shutil.copytree(TRIGGER_DEV / name, into / name)


def test_trigger_dev_candidates_are_classed_with_rows_counted_on_the_database(tmp_path, pg_url):
    names = sorted(p.name for p in TRIGGER_DEV.iterdir() if p.is_dir())
    before = [n for n in names if n < DROPS_TOKEN]
    pending = names[len(before) : len(before) + 5]
    directory = tmp_path / "migrations"
    directory.mkdir()
    shutil.copy2(TRIGGER_DEV / "migration_lock.toml", directory / "migration_lock.toml")
    _copy(before, directory)
    deploy(pg_url, directory)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # The token's user is not needed to count its column: foreign keys are not checked.
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            'INSERT INTO "PersonalAccessToken" ("id", "name", "userId", "updatedAt",'
            " \"encryptedToken\") VALUES ('t1', 'ci', 'u1', now(), 'sealed')"
        )
    _copy(pending, directory)

    with psycopg.connect(pg_url, autocommit=True) as conn:
        status = migration_status(conn, directory)
        assert list(status.pending) == pending
        found = {
            name: analyse(
                conn,
                status,
                name,
                earlier_sql=earlier_scripts(status, name, set()),
                statement_timeout="60s",
            )
            for name in pending
        }

    drops = found[DROPS_TOKEN]
    assert drops.classification == DATA_LOSING
    assert drops.effects == [
        'DROP COLUMN "PersonalAccessToken"."encryptedToken" destroys 1 non-null value'
    ]
    assert any(f.startswith("ban-drop-column:") for f in drops.findings)
    assert drops.sql == (TRIGGER_DEV / DROPS_TOKEN / "migration.sql").read_text()
    # The others add tables, columns and indexes (the one after it builds on the schema it
    # leaves): their reverses drop only what they add, which holds nothing before them.
    assert HASHED_TOKEN in pending
    assert {n: (c.classification, c.effects) for n, c in found.items() if n != DROPS_TOKEN} == {
        n: (REVERSIBLE, []) for n in pending if n != DROPS_TOKEN
    }
