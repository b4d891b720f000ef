"""A real Prisma history nobody here wrote (tests/data/trigger.dev: the first 400
migrations of trigger.dev, Apache-2.0) through the bot's diagnosis and reverse generation.

One pass over one database (tests/unit/sql/history_checks.py): every multi-statement
migration is failed at a random statement (seeded), the statements before it applied one
by one; the diagnosis must have no wrong verdict and what the bot recommends must leave the
schema exactly as before the migration. Then the migration is applied as Prisma applies it,
and its reverse must run and restore the schema exactly, or be refused with the reasons.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.rig.postgres import database_name
from tests.unit.sql.history_checks import Tally, load_directory, one_random_point, walk_history

pytestmark = pytest.mark.timeout(1800)

EXCERPT = Path(__file__).parents[2] / "data" / "trigger.dev"
SEED = 18
# Why a reverse may be refused: what was destroyed or rewritten cannot be brought back by
# SQL, only from a backup (runbook options 3 and 4).
JUSTIFIED = (
    "drop_table: dropping a table destroyed its rows",
    "drop_column: dropping a column destroyed its values",
    "data_change: a data change cannot be undone from its SQL",
    "drop_type: the type definition and any column of that type are gone",
    "do_block: procedural code is not reversed by the bot",
)


@pytest.fixture(scope="module")
def history():
    return load_directory(EXCERPT / "migrations")


@pytest.fixture(scope="module")
def corpus(pg_server, history) -> Tally:
    url = pg_server.create_database()
    tally = Tally()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            walk_history(conn, history, tally, choose=one_random_point(SEED))
    finally:
        pg_server.drop_database(database_name(url))
    return tally


def test_the_excerpt_is_a_long_real_history_with_its_licence(history):
    assert len(history) >= 200
    assert "Apache License" in (EXCERPT / "LICENSE").read_text()


def test_no_verdict_at_a_failure_point_is_wrong(corpus):
    assert corpus.failure_points >= 100
    assert corpus.statements_wrong == 0, corpus.examples.get("wrong verdict")
    assert corpus.statements_exact > corpus.statements_unknown


def test_what_the_bot_recommends_leaves_the_schema_exactly_as_before(corpus):
    assert corpus.recommended["undo_then_resolve"] > 0  # the undo path is exercised
    assert corpus.undo_failed == 0, corpus.examples.get("undo failed")
    assert corpus.undo_inexact == 0, corpus.examples.get("undo not exact")
    assert corpus.undo_exact == corpus.recommended["undo_then_resolve"]
    assert corpus.resolve_wrong == 0, corpus.examples.get("resolve on a changed schema")


def test_every_reverse_runs_and_restores_the_schema_or_is_refused(corpus, history):
    assert corpus.reverses == len(history)
    assert corpus.reverse_failed == 0, corpus.examples.get("reverse failed")
    assert corpus.reverse_inexact == 0, corpus.examples.get("reverse not exact")
    assert corpus.reverse_ran == corpus.reverse_complete
    assert corpus.reverse_complete + corpus.refused_migrations == len(history)


def test_refusals_name_what_cannot_be_brought_back(corpus):
    unjustified = {
        reason: count
        for reason, count in corpus.refusals.items()
        if not reason.startswith(JUSTIFIED)
    }
    assert unjustified == {}
    assert corpus.refused_only_enum_value == 0
    assert "refused with no reason of its own" not in corpus.examples
