"""recommendation: the runbook's next step from the history and a live diagnosis."""

from bot.prisma.deploy import deploy
from bot.prisma.recommendation import NextStep, earlier_scripts, recommendation
from bot.prisma.status import migration_status
from bot.sql.diagnosis import diagnose

INIT, BAD = "20250101000000_init", "20250102000000_bad"
INIT_SQL = 'CREATE TABLE "users" ("id" INTEGER NOT NULL, "status" TEXT DEFAULT \'new\');\n'


def failed_migration(conn, migrations, history, bad_sql: str, *, ran: str = ""):
    """INIT applied; BAD recorded failed after ``ran`` (its part that took effect)."""
    migrations.add(INIT, INIT_SQL)
    deploy(conn, migrations.path)
    migrations.add(BAD, bad_sql)
    if ran:
        conn.execute(ran)
    history.add(BAD, bad_sql, state="failed", logs="ERROR: boom")
    status = migration_status(conn, migrations.path)
    return status, diagnose(conn, bad_sql, earlier_sql=earlier_scripts(status, BAD))


def test_failed_with_nothing_applied_is_resolve_rolled_back(conn, migrations, history):
    bad = 'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\nALTER TABLE "nope" ADD "x" INT;\n'
    status, diagnosis = failed_migration(conn, migrations, history, bad)

    advice = recommendation(status, diagnosis)

    assert advice.step == NextStep.RESOLVE_ROLLED_BACK
    assert advice.runbook_option == 1
    assert advice.migration == BAD
    assert advice.command == f'prisma migrate resolve --rolled-back "{BAD}"'
    assert "none of its 2 statements took effect" in advice.reasons[0]


def test_failed_part_way_undoes_exactly_the_applied_statements(conn, migrations, history):
    bad = (
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'
        'ALTER TABLE "users" ALTER COLUMN "status" SET DEFAULT \'active\';\n'
        'ALTER TABLE "nope" ADD "x" INT;\n'
    )
    ran = bad.split("\n")[0] + bad.split("\n")[1]
    status, diagnosis = failed_migration(conn, migrations, history, bad, ran=ran)

    advice = recommendation(status, diagnosis)

    assert advice.step == NextStep.UNDO_THEN_RESOLVE
    assert advice.runbook_option == 1
    # The previous default comes from the INIT migration's SQL.
    assert advice.undo.statements == (
        'ALTER TABLE "public"."users" ALTER COLUMN "status" SET DEFAULT \'new\'',
        'ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "bio"',
    )
    assert "2 of 3 statements took effect" in advice.reasons[0]


def test_failed_part_way_with_a_drop_is_pitr(conn, migrations, history):
    bad = 'ALTER TABLE "users" DROP COLUMN "status";\nALTER TABLE "nope" ADD "x" INT;\n'
    status, diagnosis = failed_migration(
        conn, migrations, history, bad, ran='ALTER TABLE "users" DROP COLUMN "status"'
    )

    advice = recommendation(status, diagnosis)

    assert advice.step == NextStep.PITR
    assert advice.runbook_option == 3
    assert any("destroyed its values" in reason for reason in advice.reasons)


def test_failed_with_a_data_change_is_pitr(conn, migrations, history):
    bad = 'UPDATE "users" SET "status" = \'x\';\nALTER TABLE "nope" ADD "x" INT;\n'
    status, diagnosis = failed_migration(conn, migrations, history, bad)

    advice = recommendation(status, diagnosis)

    assert advice.step == NextStep.PITR
    assert "cannot be checked: UPDATE users" in advice.reasons[0]


def test_failed_without_a_diagnosis_is_pitr(conn, migrations, history):
    status, _ = failed_migration(conn, migrations, history, "SELECT 1;")

    assert recommendation(status, None).step == NextStep.PITR


def test_completed_migration_is_revert_never_resolve(conn, migrations):
    migrations.add(INIT, INIT_SQL)
    deploy(conn, migrations.path)
    status = migration_status(conn, migrations.path)

    advice = recommendation(status, diagnose(conn, INIT_SQL, earlier_sql=[]), migration=INIT)

    assert advice.step == NextStep.REVERT
    assert advice.runbook_option == 2
    assert "P3012" in advice.reasons[0]
    assert advice.command is None


def test_completed_migration_that_dropped_data_is_pitr(conn, migrations):
    migrations.add(INIT, INIT_SQL)
    migrations.add(BAD, 'ALTER TABLE "users" DROP COLUMN "status";\n')
    deploy(conn, migrations.path)
    status = migration_status(conn, migrations.path)

    advice = recommendation(
        status,
        diagnose(conn, 'ALTER TABLE "users" DROP COLUMN "status";', earlier_sql=[INIT_SQL]),
        migration=BAD,
    )

    assert advice.step == NextStep.PITR


def test_nothing_failed(conn, migrations):
    migrations.add(INIT, INIT_SQL)
    deploy(conn, migrations.path)

    advice = recommendation(migration_status(conn, migrations.path), None)

    assert advice.step == NextStep.NOTHING
    assert advice.runbook_option is None


def test_an_added_enum_value_stays_and_the_undo_says_how_to_re_run(conn, migrations, history):
    bad = (
        "ALTER TYPE \"Mood\" ADD VALUE 'SAD';\n"
        'ALTER TABLE "users" ADD COLUMN "bio" TEXT;\n'
        'ALTER TABLE "nope" ADD "x" INT;\n'
    )
    migrations.add("20241231000000_mood", "CREATE TYPE \"Mood\" AS ENUM ('OK');\n")
    status, diagnosis = failed_migration(
        conn,
        migrations,
        history,
        bad,
        ran='ALTER TYPE "Mood" ADD VALUE \'SAD\'; ALTER TABLE "users" ADD COLUMN "bio" TEXT',
    )

    advice = recommendation(status, diagnosis)

    assert advice.step == NextStep.UNDO_THEN_RESOLVE
    assert advice.undo.statements == ('ALTER TABLE "public"."users" DROP COLUMN IF EXISTS "bio"',)
    assert any("ADD VALUE IF NOT EXISTS" in reason for reason in advice.reasons)


def test_a_drop_and_a_re_create_nobody_can_tell_apart_is_never_undo(conn, migrations, history):
    bad = (
        'ALTER TABLE "users" ADD CONSTRAINT "users_id_key" UNIQUE ("id");\n'
        'ALTER TABLE "users" DROP CONSTRAINT "users_id_key";\n'
        'ALTER TABLE "users" ADD CONSTRAINT "users_id_key" UNIQUE ("id");\n'
        'ALTER TABLE "nope" ADD "x" INT;\n'
    )
    ran = 'ALTER TABLE "users" ADD CONSTRAINT "users_id_key" UNIQUE ("id")'
    status, diagnosis = failed_migration(conn, migrations, history, bad, ran=ran)

    advice = recommendation(status, diagnosis)

    # The catalog shows the key either way: after the first statement or after the third.
    assert [s.verdict for s in diagnosis.statements][:3] == ["applied", "unknown", "unknown"]
    assert advice.step == NextStep.PITR
    assert advice.undo is None
