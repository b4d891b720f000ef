"""run_undo: the reverse plan in one transaction, inside Prisma's lock."""

import pytest

from bot.errors import UserError
from bot.prisma.undo import run_undo
from bot.sql.diagnosis import diagnose
from bot.sql.reverse import reverse_plan

from .conftest import LOCK_KEY

SCRIPT = (
    'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'
    'CREATE INDEX "users_bio_idx" ON "users"("bio");\n'
    'ALTER TABLE "nope" ADD COLUMN "x" INT;\n'
)


def columns(conn) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
        " ORDER BY ordinal_position"
    ).fetchall()
    return [r[0] for r in rows]


HISTORY = ["CREATE TABLE users (id int)"]


def partly_applied(conn):
    conn.execute(HISTORY[0])
    conn.execute(
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT; CREATE INDEX "users_bio_idx" ON "users"("bio")'
    )
    return reverse_plan(diagnose(conn, SCRIPT, earlier_sql=HISTORY))


def test_undo_runs_the_plan(conn):
    plan = partly_applied(conn)

    ran = run_undo(conn, plan)

    assert ran == (
        'DROP INDEX IF EXISTS "public"."users_bio_idx"',
        'ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "bio"',
    )
    assert columns(conn) == ["id"]


def test_undo_is_all_or_nothing(conn, other_conn):
    plan = partly_applied(conn)
    other_conn.execute("BEGIN")
    other_conn.execute("SELECT * FROM users")  # holds ACCESS SHARE: DROP COLUMN must wait

    with pytest.raises(UserError) as caught:
        run_undo(conn, plan, ddl_lock_timeout=0.2)
    other_conn.execute("ROLLBACK")

    assert "rolled back, nothing changed: canceling statement due to lock timeout" in str(
        caught.value
    )
    assert columns(conn) == ["id", "bio"]  # the DROP INDEX that ran first was rolled back
    assert conn.execute("SELECT to_regclass('users_bio_idx') IS NOT NULL").fetchone()[0]
    assert conn.execute("SHOW lock_timeout").fetchone()[0] == "0"


def test_undo_waits_for_prismas_lock(conn, other_conn):
    plan = partly_applied(conn)
    other_conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))

    with pytest.raises(UserError) as caught:
        run_undo(conn, plan, lock_timeout=0.2)

    assert caught.value.code == "P1002"
    assert columns(conn) == ["id", "bio"]


def test_incomplete_plan_is_refused(conn):
    history = ["CREATE TABLE users (id int, legacy text)"]
    conn.execute(history[0])
    conn.execute("ALTER TABLE users DROP COLUMN legacy")
    plan = reverse_plan(diagnose(conn, "ALTER TABLE users DROP COLUMN legacy", earlier_sql=history))

    with pytest.raises(UserError) as caught:
        run_undo(conn, plan)

    assert "option 3" in caught.value.hint
    assert "destroyed its values" in caught.value.message
