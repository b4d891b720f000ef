"""`rollback-bot check` as CI runs it: the migrations directory, a database URL in an
environment variable (a real PostgreSQL the suite starts), exit status and the Markdown
made for a pull-request comment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.checklists import MIGRATION_SAFETY
from bot.main import main
from bot.prevention.report import QUESTIONS
from bot.prisma.deploy import deploy

INIT = "20260101000000_init"
ADD = "20260102000000_add_nickname"
DROP = "20260103000000_drop_bio"
ACK = '-- rollback-bot: allow data-loss "bio was replaced by profiles in v2"\n'
TRIGGER_DEV = Path(__file__).parents[2] / "data" / "trigger.dev" / "migrations"
FILL = "20260104000000_fill_bio"
FILL_SQL = (
    'UPDATE "User" SET "bio" = \'\' WHERE "bio" IS NULL;\n'
    'INSERT INTO "User" ("id", "email") VALUES (\'4\', \'d@x\');\n'
)
BIO_REQUIRED = "20260105000000_bio_required"


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).mkdir(parents=True, exist_ok=True)
    (directory / name / "migration.sql").write_text(sql)


@pytest.fixture
def project(tmp_path: Path, pg_url: str, monkeypatch) -> Path:
    """A database with INIT applied (by the bot's `prisma migrate deploy`) and three users,
    two with a bio; ADD and DROP pending."""
    migrations = tmp_path / "migrations"
    _write(
        migrations,
        INIT,
        'CREATE TABLE "User" ("id" TEXT NOT NULL, "email" TEXT NOT NULL, "bio" TEXT,\n'
        '    CONSTRAINT "User_pkey" PRIMARY KEY ("id"));\n',
    )
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    deploy(pg_url, migrations)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO \"User\" VALUES ('1', 'a@x', 'hi'), ('2', 'b@x', 'yo'), ('3', 'c@x', NULL)"
        )
        conn.execute('ANALYZE "User"')
    _write(migrations, ADD, 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n')
    _write(migrations, DROP, 'ALTER TABLE "User" DROP COLUMN "bio";\n')
    monkeypatch.setenv("CHECK_DATABASE_URL", pg_url)
    return migrations


def run_check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def check_with_database(capsys, project: Path, *args: str) -> tuple[int, str, str]:
    return run_check(
        capsys, "--migrations-dir", str(project), "--database-url-env", "CHECK_DATABASE_URL", *args
    )


def test_a_pending_drop_of_a_column_holding_data_fails_with_the_count(project, capsys):
    code, out, _ = check_with_database(
        capsys,
        project,
        "--format",
        "json",
    )
    assert code == 1
    report = json.loads(out)
    by_name = {m["name"]: m for m in report["migrations"]}
    assert list(by_name) == [ADD, DROP]  # the pending ones, in order; INIT is applied
    assert by_name[ADD]["verdict"] == "pass"
    dropped = by_name[DROP]
    assert dropped["verdict"] == "blocked"
    assert dropped["reversibility"]["class"] == "data_losing"
    assert "destroys 2 non-null values" in dropped["reversibility"]["reasons"][0]["text"]
    assert dropped["acknowledgement_needed"] == "data-loss"
    (lock,) = dropped["statements"][0]["locks"]
    assert lock["mode"] == "ACCESS EXCLUSIVE"
    assert lock["table"] == 'public."User"'
    assert lock["size"]["exists"] and lock["size"]["rows"] == 3


def test_an_acknowledged_drop_passes_and_the_reason_is_shown(project, capsys):
    (project / DROP / "migration.sql").write_text(ACK + 'ALTER TABLE "User" DROP COLUMN "bio";\n')
    code, out, _ = run_check(
        capsys, "--migrations-dir", str(project), "--database-url-env", "CHECK_DATABASE_URL"
    )
    assert code == 0, out
    assert "acknowledged in the file" in out
    assert 'allow data-loss "bio was replaced by profiles in v2"' in out


def test_a_drop_of_an_empty_column_loses_nothing(project, pg_url, capsys):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('UPDATE "User" SET "bio" = NULL')
    code, out, _ = check_with_database(
        capsys,
        project,
        "--migration",
        DROP,
        "--format",
        "json",
    )
    assert code == 0, out
    (review,) = json.loads(out)["migrations"]
    assert review["reversibility"]["class"] == "reversible"
    assert "holds no data now" in review["reversibility"]["reasons"][0]["text"]
    # Still not backward compatible: old code selects the column.
    assert review["compatibility"] == "breaking"


def test_without_a_database_a_drop_counts_as_data_losing(project, capsys):
    code, out, _ = run_check(capsys, "--migrations-dir", str(project), "--migration", DROP)
    assert code == 1
    assert "not counted: no database" in out


def test_without_a_database_the_migrations_must_be_named(project, capsys):
    code, out, err = run_check(capsys, "--migrations-dir", str(project))
    assert code == 2
    assert out == ""
    assert "--migration NAME" in err


def test_bad_input_exits_2_with_one_line(tmp_path, project, capsys, monkeypatch):
    code, _, err = run_check(capsys, "--migrations-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a directory" in err
    code, _, err = run_check(
        capsys, "--migrations-dir", str(project), "--migration", "20990101000000_nope"
    )
    assert code == 2 and "There is no migration `20990101000000_nope`" in err
    monkeypatch.delenv("CHECK_DATABASE_URL")
    code, _, err = run_check(
        capsys, "--migrations-dir", str(project), "--database-url-env", "CHECK_DATABASE_URL"
    )
    assert code == 2 and "CHECK_DATABASE_URL" in err


def test_an_unreachable_database_exits_2_without_the_password(project, capsys, monkeypatch):
    monkeypatch.setenv("CHECK_DATABASE_URL", "postgresql://u:s3cr3tpw@127.0.0.1:1/db")
    code, out, err = run_check(
        capsys, "--migrations-dir", str(project), "--database-url-env", "CHECK_DATABASE_URL"
    )
    assert code == 2
    assert "Cannot connect" in err
    assert "s3cr3tpw" not in err + out


def test_a_file_that_does_not_parse_fails(project, capsys):
    _write(project, "20260104000000_broken", 'ALTER TABLE "User" ADD COLUMN;\n')
    code, out, _ = run_check(
        capsys, "--migrations-dir", str(project), "--migration", "20260104000000_broken"
    )
    assert code == 1
    assert "cannot be reviewed: The SQL does not parse" in out


def test_the_markdown_answers_the_checklist_word_for_word(project, capsys):
    code, out, _ = check_with_database(
        capsys,
        project,
        "--format",
        "markdown",
    )
    assert code == 1
    assert out.startswith("## rollback-bot check: Migration Safety Checklist\n")
    for item in MIGRATION_SAFETY.items:
        assert out.count(f"**{item.title.replace('_', chr(92) + '_')}**") == 2, item.title
    lines = out.splitlines()
    assert f"| <code>{ADD}</code> | Yes | Yes: reversible | ✅ passes |" in lines
    assert (
        f"| <code>{DROP}</code> | No | No: data-losing | ❌ destroys data or cannot be undone:"
        " not acknowledged |" in lines
    )
    # The blocked one is open, the passing one folded; the rollback plan is fenced SQL.
    assert f"<details open><summary>❌ <code>{DROP}</code>" in out
    assert f"<details><summary>✅ <code>{ADD}</code>" in out
    assert '```sql\nALTER TABLE "public"."User" DROP COLUMN IF EXISTS "nickname";\n```' in out
    assert "To deploy it anyway, add the line" in out


def test_markdown_escapes_what_the_pull_request_wrote(project, capsys):
    hostile = '-- rollback-bot: allow data-loss "<img src=x onerror=alert(1)> | **x**"\n'
    (project / DROP / "migration.sql").write_text(
        hostile + 'ALTER TABLE "User" DROP COLUMN "bio";\n'
    )
    code, out, _ = run_check(
        capsys, "--migrations-dir", str(project), "--migration", DROP, "--format", "markdown"
    )
    assert code == 0
    assert "<img" not in out
    assert "&lt;img src=x onerror=alert(1)&gt; \\| \\*\\*x\\*\\*" in out


def test_a_malformed_acknowledgement_is_reported_and_does_not_count(project, capsys):
    (project / DROP / "migration.sql").write_text(
        "-- rollback-bot: allow data-loss\n"
        "SELECT '-- rollback-bot: allow data-loss \"in a string\"';\n"
        'ALTER TABLE "User" DROP COLUMN "bio";\n'
    )
    code, out, _ = run_check(capsys, "--migrations-dir", str(project), "--migration", DROP)
    assert code == 1
    assert "line 1: `rollback-bot: allow data-loss` is not" in out


def test_real_history_a_trigger_dev_migration_that_drops_a_column(tmp_path, capsys):
    """trigger.dev's 20240111144844 drops encryptedToken and adds two NOT NULL columns."""
    name = "20240111144844_encrypted_token_now_json_and_added_obfuscated_token_column"
    code, out, _ = run_check(
        capsys, "--migrations-dir", str(TRIGGER_DEV), "--migration", name, "--format", "json"
    )
    assert code == 1
    (review,) = json.loads(out)["migrations"]
    assert review["compatibility"] == "breaking"
    assert review["reversibility"]["class"] == "data_losing"
    rules = {f["rule"] for f in review["lint"]["findings"]}
    assert "ban-drop-column" in rules  # squawk's findings are on the card
    data = review["answers"][2]["answer"]
    assert any("obfuscatedToken" in line and "NOT NULL without a DEFAULT" in line for line in data)


def test_the_console_script_runs_it(project):
    """The installed entry point, as a CI step calls it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.main",
            "check",
            "--migrations-dir",
            str(project),
            "--migration",
            ADD,
            "--format",
            "markdown",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert "✅ passes" in result.stdout


def answer(review: dict, question: str) -> list[str]:
    """The answer lines of one of the checklist's questions (by its id) in the JSON."""
    (found,) = [a["answer"] for a in review["answers"] if a["question"] == QUESTIONS[question]]
    return found


def test_a_data_migration_is_irreversible_and_fails_until_acknowledged_as_such(project, capsys):
    _write(project, FILL, FILL_SQL)
    code, out, _ = check_with_database(capsys, project, "--migration", FILL, "--format", "json")
    assert code == 1
    (review,) = json.loads(out)["migrations"]
    assert review["reversibility"]["class"] == "irreversible"
    assert review["verdict"] == "blocked" and review["acknowledgement_needed"] == "irreversible"
    assert answer(review, "data_migration") == [
        'line 1: UPDATE "User" changes data',
        'line 2: INSERT INTO "User" changes data',
    ]
    # Accepting data loss is not accepting that nothing can undo it.
    _write(project, FILL, '-- rollback-bot: allow data-loss "backfill"\n' + FILL_SQL)
    code, out, _ = check_with_database(capsys, project, "--migration", FILL)
    assert code == 1, out
    assert 'add the line `-- rollback-bot: allow irreversible "<why>"`' in out

    _write(
        project, FILL, '-- rollback-bot: allow irreversible "seeds the support user"\n' + FILL_SQL
    )
    code, out, _ = check_with_database(capsys, project, "--migration", FILL)
    assert code == 0, out
    assert "acknowledged in the file" in out
    assert 'line 1: allow irreversible "seeds the support user"' in out
    assert 'line 2: UPDATE "User" changes data' in out  # the lines of the file as it is


def test_set_not_null_names_the_rows_that_hold_null_counted_live(project, pg_url, capsys):
    _write(project, BIO_REQUIRED, 'ALTER TABLE "User" ALTER COLUMN "bio" SET NOT NULL;\n')

    def data_answer() -> list[str]:
        _, out, _ = check_with_database(
            capsys, project, "--migration", BIO_REQUIRED, "--format", "json"
        )
        (review,) = json.loads(out)["migrations"]
        return answer(review, "data_migration")

    need = 'line 1: ALTER COLUMN "User".bio SET NOT NULL: {} NULL: backfill them first'
    assert data_answer() == [need.format("1 row holds")]  # user 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('UPDATE "User" SET "bio" = NULL WHERE "id" = \'1\'')
    assert data_answer() == [need.format("2 rows hold")]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('UPDATE "User" SET "bio" = \'x\'')
    assert data_answer() == ["No: the file changes no data and needs no backfill"]


def test_a_not_null_column_without_default_on_a_table_with_rows_needs_a_backfill(project, capsys):
    name = "20260106000000_add_age"
    _write(project, name, 'ALTER TABLE "User" ADD COLUMN "age" INTEGER NOT NULL;\n')
    _, out, _ = check_with_database(capsys, project, "--migration", name, "--format", "json")
    (review,) = json.loads(out)["migrations"]
    (need,) = answer(review, "data_migration")
    assert need.startswith('line 1: ADD COLUMN "User".age is NOT NULL without a DEFAULT')
    assert 'public."User" has 3 rows: the statement fails until they get a value' in need


def test_the_markdown_gives_the_expand_contract_way_for_what_is_not_additive(project, capsys):
    _, out, _ = check_with_database(capsys, project, "--format", "markdown")
    both = f"**{QUESTIONS['both_schemas']}**"

    def both_schemas_answer(name: str) -> str:
        (details,) = [d for d in out.split("<details")[1:] if f"<code>{name}</code>" in d]
        return details.split(both)[1].split("**")[0].strip()

    drop = both_schemas_answer(DROP)
    assert drop.startswith("- Contract in two releases: first deploy code that no longer reads")
    assert drop.endswith("then drop it in a later migration.")
    assert both_schemas_answer(ADD) == "- Yes: every change is additive"
