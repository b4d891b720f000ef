"""`rollback-bot doctor` and `/rollback doctor` against the real parts: the database as the
documented role with a deployed Prisma history, moto's RDS instance and secret, the fake
Slack. All pass when everything is right; each thing broken in turn is one FAIL line that
says what is wrong, and the exit status says so too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from bot.prisma.deploy import deploy
from bot.store import migrations
from tests.unit.aws.source_instance import make_source

SOURCE, SECRET_ID = "skillancer-rds", "skillancer/rds/database"
INIT = "20250101000000_init"


@pytest.fixture
def project(tmp_path, pg_url):
    migrations = tmp_path / "prisma" / "migrations"
    (migrations / INIT).mkdir(parents=True)
    (migrations / INIT / "migration.sql").write_text('CREATE TABLE "User" ("id" TEXT);\n')
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    deploy(pg_url, migrations)
    return migrations


@pytest.fixture
def checked(bot_factory, aws, pg_url, project):
    make_source(aws, SOURCE)
    aws.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"url": pg_url})
    )
    return bot_factory(
        tables_extra=f"""
[environments.rds]
database_secret_id = "{SECRET_ID}"
rds_instance_id = "{SOURCE}"
migrations_dir = "{project}"
protected = true
approvers = ["@db-approvers"]
"""
    )


def doctor(bot) -> tuple[int, list[str]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.main",
            "doctor",
            "--env",
            "rds",
            "--config",
            str(bot.config_path),
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not result.stderr.strip(), result.stderr
    return result.returncode, result.stdout.splitlines()


def failures(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip().startswith("FAIL")]


def test_everything_right_is_all_pass_and_exit_0(checked):
    code, lines = doctor(checked)
    assert failures(lines) == [] and code == 0, "\n".join(lines)
    text = "\n".join(lines)
    for expected in (
        "takes writes",
        "schema version",
        "token scopes match manifest.yml",
        "user groups resolvable: @db-approvers",
        "credentials found",
        "region us-east-1",
        "database reachable (AWS Secrets Manager secret skillancer/rds/database)",
        "_prisma_migrations owned by app_",
        "migrations_dir matches the database (1 migrations, 0 pending, 0 failed)",
        f"RDS instance {SOURCE}: available, backups kept 7 days",
        f"secret {SECRET_ID} readable",
    ):
        assert expected in text, expected


def test_each_problem_is_one_clear_fail_line_and_exit_1(checked, project, pg_server, aws):
    checked.slack.bot_token_scopes.discard("usergroups:read")
    (project / INIT / "migration.sql").write_text('CREATE TABLE "User" ("id" INT);\n')
    code, lines = doctor(checked)
    assert code == 1
    assert failures(lines) == [
        "FAIL  token lacks scopes usergroups:read: reinstall the app",
        f"FAIL  1 migration edited after they were applied: {INIT}",
    ]


def test_a_superuser_url_and_a_missing_instance_are_named(checked, pg_server, aws):
    superuser = pg_server.create_database()
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("CREATE TABLE _prisma_migrations (id text)")
    aws.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"url": superuser})
    )
    aws.client("rds").delete_db_instance(DBInstanceIdentifier=SOURCE, SkipFinalSnapshot=True)
    code, lines = doctor(checked)
    assert code == 1
    found = "\n".join(failures(lines))
    assert "connects as superuser" in found and "docs/database-privileges.sql" in found
    assert f"There is no RDS DB instance `{SOURCE}`" in found
    assert superuser.split("@")[0].split(":")[-1] not in "\n".join(lines)  # no password


def test_a_state_file_from_a_newer_release_fails_its_line(checked):
    # Through the store's own connection: a SQLite file or the PostgreSQL state alike.
    with checked.store.transaction() as db:
        db.execute("INSERT INTO schema_version VALUES (999, 'future', 'x')")
    try:
        code, lines = doctor(checked)
    finally:
        with checked.store.transaction() as db:  # for the rig's teardown
            db.execute("DELETE FROM schema_version WHERE version = 999")
    latest = migrations.latest_version()
    assert code == 1
    assert f"FAIL  schema version 999 (this release: {latest})" in failures(lines)


def test_slash_doctor_answers_the_requester_with_the_same_checks(checked):
    checked.slack.bot_token_scopes.discard("channels:join")
    checked.signer.slash("doctor rds", user="U_ALICE")
    reply = checked.wait_until(lambda: checked.slack.responses(), what="doctor", timeout=60)[-1]
    assert reply["response_type"] == "ephemeral"
    text = json.dumps(reply["blocks"])
    assert ":x: token lacks scopes channels:join" in text
    assert f":white_check_mark: RDS instance {SOURCE}: available" in text
