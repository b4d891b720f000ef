"""`rollback-bot doctor` and `/rollback doctor` against the real parts: the database as the
documented role with a deployed Prisma history, moto's RDS instance and secret, the fake
Slack. All pass when everything is right; each thing broken in turn is one FAIL line that
says what is wrong, and the exit status says so too."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from bot.prisma.deploy import deploy
from bot.store import migrations
from tests.rig.postgres import database_name
from tests.scenario.bot_role.conftest import owner_and_bot_roles
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


def doctor(bot, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
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
        env=dict(os.environ) if env is None else env,
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


# --- each thing broken in turn: exactly one FAIL line naming it, exit 1 --------------------


def only_failure(bot, env: dict[str, str] | None = None) -> str:
    code, lines = doctor(bot, env)
    found = failures(lines)
    assert code == 1 and len(found) == 1, "\n".join(lines)
    return found[0]


def admin_url(pg_server, pg_url: str) -> str:
    """The server's superuser on the test's database (to break what the bot's role cannot)."""
    return pg_server.url(database_name(pg_url))


def point_secret_at(aws, url: str) -> None:
    aws.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID, SecretString=json.dumps({"url": url})
    )


def test_an_absent_migrations_dir(checked, project):
    shutil.rmtree(project)
    assert only_failure(checked) == f"FAIL  migrations_dir {project} does not exist"


def test_a_migration_in_the_database_missing_from_the_directory(checked, project):
    shutil.rmtree(project / INIT)
    assert only_failure(checked) == (
        f"FAIL  1 migration in the database but not in the directory: {INIT}"
    )


def test_an_unreadable_migration_sql(checked, project):
    # A dangling link: unreadable even for root, who ignores file modes.
    (project / INIT / "migration.sql").unlink()
    (project / INIT / "migration.sql").symlink_to(project / "elsewhere.sql")
    assert only_failure(checked) == f"FAIL  1 migration without a readable migration.sql: {INIT}"


def test_no_prisma_migrations_table(checked, pg_server, pg_url):
    with psycopg.connect(admin_url(pg_server, pg_url), autocommit=True) as conn:
        conn.execute("DROP TABLE _prisma_migrations")
    assert only_failure(checked) == "FAIL  no _prisma_migrations table in this schema"


def test_an_unreachable_database(checked, aws, pg_url):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    parts = urlsplit(pg_url)
    point_secret_at(
        aws, urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}"))
    )
    line = only_failure(checked)
    assert line.startswith(f"FAIL  database (AWS Secrets Manager secret {SECRET_ID}): ")
    assert f'"127.0.0.1", port {port} failed: Connection refused' in line
    assert parts.password not in line


def test_a_role_that_does_not_act_as_the_owner(checked, aws, pg_server, pg_url):
    database = database_name(pg_url)
    role, password = f"outsider_{database}"[:63], secrets.token_urlsafe(12)
    with psycopg.connect(admin_url(pg_server, pg_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("GRANT SELECT ON _prisma_migrations TO {}").format(sql.Identifier(role))
        )
    parts = urlsplit(pg_url)
    point_secret_at(
        aws,
        urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.netloc.rsplit('@', 1)[1]}")),
    )
    try:
        line = only_failure(checked)
    finally:
        with psycopg.connect(admin_url(pg_server, pg_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    owner, _ = owner_and_bot_roles(database)
    assert line == (
        f"FAIL  role {role} acts as {role}; _prisma_migrations owned by {owner}: DDL will fail,"
        " see docs/database-privileges.sql"
    )


@pytest.mark.parametrize(
    ("dropped", "expected"),
    [
        (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), "FAIL  no AWS credentials"),
        (
            ("AWS_DEFAULT_REGION", "AWS_REGION"),
            "FAIL  no region: set AWS_DEFAULT_REGION (or AWS_REGION)",
        ),
    ],
)
def test_aws_credentials_or_region_absent(checked, dropped, expected):
    # The rig already points the config files at an empty one and turns IMDS off.
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    assert only_failure(checked, env) == (
        f"{expected}: not checked: RDS instance {SOURCE}, secret {SECRET_ID},"
        " the rds database behind it"
    )


def test_an_unknown_user_group(checked):
    config = checked.config_path.read_text()
    checked.config_path.write_text(config.replace('"@db-approvers"', '"@db-approverz"'))
    assert only_failure(checked) == "FAIL  user groups not found: @db-approverz"


def test_an_unreadable_secret(checked, aws):
    aws.client("secretsmanager").delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    line = only_failure(checked)
    assert line.startswith(f"FAIL  secret {SECRET_ID} readable: AWS refused to read secret")
    assert "ResourceNotFoundException" in line


def test_backups_off(checked, aws):
    aws.client("rds").modify_db_instance(
        DBInstanceIdentifier=SOURCE, BackupRetentionPeriod=0, ApplyImmediately=True
    )
    assert only_failure(checked) == (
        f"FAIL  RDS instance {SOURCE}: available, but automated backups are off: point-in-time"
        " recovery is impossible (restore from a snapshot only)"
    )
