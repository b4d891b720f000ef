"""The Migration Safety Checklist's compatibility answer and the locks each statement takes,
over real statements from a real history (trigger.dev's migrations, tests/data/trigger.dev)
and a few written here for forms that history does not use (CONCURRENTLY, NOT VALID,
VALIDATE, DELETE, TRUNCATE, triggers, volatile defaults).

Each case names the file and the statement's first words; the statement is read from the
file, so the corpus is exactly what Prisma ran. The expectations are written by hand from
the rules (strong_migrations' list; PostgreSQL's lock table), not from the code's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.prevention.compatibility import Compatibility, classify
from bot.prevention.locks import BUILD, REWRITE, SCAN, LockMode, locks_of
from bot.prevention.review import worst
from bot.sql.changes import changes_of
from bot.sql.statements import split_statements

MIGRATIONS = Path(__file__).parents[2] / "data" / "trigger.dev" / "migrations"
C, COND, B = Compatibility.COMPATIBLE, Compatibility.CONDITIONAL, Compatibility.BREAKING
AE, SRE, SH, SUE, RE = (
    LockMode.ACCESS_EXCLUSIVE,
    LockMode.SHARE_ROW_EXCLUSIVE,
    LockMode.SHARE,
    LockMode.SHARE_UPDATE_EXCLUSIVE,
    LockMode.ROW_EXCLUSIVE,
)

# (migration, statement's first words, compatibility, locks as (table, mode, work))
REAL = [
    # ADD COLUMN: nullable or with a default is compatible; NOT NULL without one breaks
    # (the RunConnection one adds "integrationId" NOT NULL beside a column with a default).
    (
        "20230613092902_event_example_payload",
        'ALTER TABLE "EventExample" ADD COLUMN "payload"',
        C,
        [("EventExample", AE, "")],
    ),
    (
        "20230313143913_added_latest_commit_to_projects",
        'ALTER TABLE "RepositoryProject" ADD',
        C,
        [("RepositoryProject", AE, "")],
    ),
    (
        "20221216140541_add_datetime_to_workflow_run",
        'ALTER TABLE "WorkflowRun" ADD COLUMN',
        B,
        [("WorkflowRun", AE, "")],
    ),
    (
        "20230428092036_add_slug_to_api_connections",
        'ALTER TABLE "APIConnection" ADD COLUMN',
        B,
        [("APIConnection", AE, "")],
    ),
    (
        "20221207113401_user_organization_workflow",
        'ALTER TABLE "User" ADD COLUMN "accessToken"',
        B,
        [("User", AE, "")],
    ),
    (
        "20230616094008_updating_run_connections_to_work_with_new_integrations",
        'ALTER TABLE "RunConnection" ADD COLUMN "authSource"',
        B,
        [("RunConnection", AE, "")],
    ),
    (
        "20230516122003_add_secret_reference_to_trigger_source",
        'ALTER TABLE "TriggerSource" ADD COLUMN "secretReferenceId"',
        B,
        [("TriggerSource", AE, "")],
    ),
    # DROP COLUMN (alone or with ADD COLUMN: the "rename by drop and add" Prisma writes).
    (
        "20230515152217_move_params_to_trigger_sources",
        'ALTER TABLE "HttpSource" DROP COLUMN',
        B,
        [("HttpSource", AE, "")],
    ),
    (
        "20230616104937_remove_api_identifier",
        'ALTER TABLE "Integration" DROP COLUMN',
        B,
        [("Integration", AE, "")],
    ),
    (
        "20231120163155_add_webhook_environment",
        'ALTER TABLE "Webhook" DROP COLUMN "config"',
        B,
        [("Webhook", AE, "")],
    ),
    (
        "20230303092424_remove_oauth_token_columns",
        'ALTER TABLE "GitHubAppAuthorization" DROP',
        B,
        [("GitHubAppAuthorization", AE, "")],
    ),
    (
        "20230329132829_changed_dispatched_at_to_delivered_at",
        'ALTER TABLE "EventLog" DROP',
        B,
        [("EventLog", AE, "")],
    ),
    (
        "20230404095457_rename_display_properties_to_elements",
        'ALTER TABLE "Task" DROP COLUMN',
        B,
        [("Task", AE, "")],
    ),
    (
        "20221227182358_rename_rule_to_filter",
        'ALTER TABLE "EventRule" DROP COLUMN "rule"',
        B,
        [("EventRule", AE, "")],
    ),
    (
        "20231024122540_http_endpoint_scoped_to_project_not_environment",
        'ALTER TABLE "TriggerHttpEndpoint" DROP COLUMN',
        B,
        [("TriggerHttpEndpoint", AE, "")],
    ),
    # RENAME COLUMN.
    (
        "20230109195958_response_changed_output_context",
        'ALTER TABLE "IntegrationResponse" RENAME',
        B,
        [("IntegrationResponse", AE, "")],
    ),
    (
        "20230724074140_changed",
        'ALTER TABLE "EventDispatcher" RENAME COLUMN',
        B,
        [("EventDispatcher", AE, "")],
    ),
    # Type changes rewrite the table under ACCESS EXCLUSIVE.
    (
        "20230105175909_make_ts_a_string",
        'ALTER TABLE "WorkflowRunStep" ALTER COLUMN "ts" SET DATA',
        B,
        [("WorkflowRunStep", AE, REWRITE)],
    ),
    (
        "20230115194010_add_scheduler_source_model",
        'ALTER TABLE "ExternalSource" ALTER COLUMN "type"',
        B,
        [("ExternalSource", AE, REWRITE)],
    ),
    (
        "20221227191746_renamed_processed_to_dispatch_for_events",
        'ALTER TABLE "TriggerEvent" ALTER COLUMN "status" TYPE',
        B,
        [("TriggerEvent", AE, REWRITE)],
    ),
    (
        "20230614135014_change_endpoint_source_enum",
        'ALTER TABLE "EndpointIndex" ALTER COLUMN "source" TYPE',
        B,
        [("EndpointIndex", AE, REWRITE)],
    ),
    # SET NOT NULL breaks old writers of NULL and scans the table.
    (
        "20240115160657_add_external_ref_to_projects",
        'ALTER TABLE "Project" ALTER COLUMN',
        B,
        [("Project", AE, SCAN)],
    ),
    (
        "20230105173643_add_timestamp_to_steps",
        'ALTER TABLE "WorkflowRunStep" ALTER COLUMN "ts" SET',
        B,
        [("WorkflowRunStep", AE, SCAN)],
    ),
    (
        "20230103145652_add_idempotency_key_to_workflow_run_steps",
        'ALTER TABLE "WorkflowRunStep" ALTER',
        B,
        [("WorkflowRunStep", AE, SCAN)],
    ),
    (
        "20221216125550_added_runtime_environment_title",
        'ALTER TABLE "RuntimeEnvironment" ALTER',
        B,
        [("RuntimeEnvironment", AE, SCAN)],
    ),
    # DROP NOT NULL and SET DEFAULT accept every old write.
    (
        "20221219171221_support_output_step",
        'ALTER TABLE "WorkflowRunStep" ALTER COLUMN "input"',
        C,
        [("WorkflowRunStep", AE, "")],
    ),
    (
        "20221212134846_api_optional_external_id",
        'ALTER TABLE "APIConnection" ALTER COLUMN',
        C,
        [("APIConnection", AE, "")],
    ),
    (
        "20230404094406_make_display_key_optional",
        'ALTER TABLE "Task" ALTER COLUMN',
        C,
        [("Task", AE, "")],
    ),
    (
        "20231121144353_make_job_run_number_optional",
        'ALTER TABLE "JobRun" ALTER COLUMN',
        C,
        [("JobRun", AE, "")],
    ),
    (
        "20230503172156_rename_create_execution_to_create_run",
        'ALTER TABLE "JobEventRule" ALTER COLUMN "action" SET DEFAULT',
        C,
        [("JobEventRule", AE, "")],
    ),
    (
        "20240118155439_change_payload_output_type_defaults",
        'ALTER TABLE "TaskRun" ALTER COLUMN',
        C,
        [("TaskRun", AE, "")],
    ),
    # DROP DEFAULT: old code that omits the column fails when it is NOT NULL.
    (
        "20230213154802_simplify_org_template_status",
        'ALTER TABLE "OrganizationTemplate" ALTER',
        COND,
        [("OrganizationTemplate", AE, "")],
    ),
    (
        "20230119183126_removed_archived_status",
        'ALTER TABLE "Workflow" ALTER COLUMN "status" DROP',
        COND,
        [("Workflow", AE, "")],
    ),
    (
        "20221220101020_make_started_at_optional",
        'ALTER TABLE "WorkflowRun" ALTER COLUMN',
        COND,
        [("WorkflowRun", AE, "")],
    ),
    # Foreign keys: SHARE ROW EXCLUSIVE on both tables, the altered one scanned.
    (
        "20221228155121_add_external_service_model",
        'ALTER TABLE "ExternalService" ADD CONSTRAINT "ExternalService_connectionId_fkey"',
        COND,
        [("ExternalService", SRE, SCAN), ("APIConnection", SRE, "")],
    ),
    (
        "20240116163753_add_task_run_model",
        'ALTER TABLE "TaskRun" ADD CONSTRAINT "TaskRun_projectId_fkey"',
        COND,
        [("TaskRun", SRE, SCAN), ("Project", SRE, "")],
    ),
    (
        "20221207113401_user_organization_workflow",
        'ALTER TABLE "Workflow" ADD CONSTRAINT',
        COND,
        [("Workflow", SRE, SCAN), ("Organization", SRE, "")],
    ),
    (
        "20230426150713_add_support_for_projects",
        'ALTER TABLE "RuntimeEnvironment" ADD CONSTRAINT "RuntimeEnvironment_orgMemberId_fkey"',
        COND,
        [("RuntimeEnvironment", SRE, SCAN), ("OrgMember", SRE, "")],
    ),
    # DROP CONSTRAINT accepts every old write.
    (
        "20230615152126_revamp_integration_schema",
        'ALTER TABLE "ApiConnection" DROP CONSTRAINT',
        C,
        [("ApiConnection", AE, "")],
    ),
    (
        "20230512085413_schema_redesign_for_new_system",
        'ALTER TABLE "EventLog" DROP CONSTRAINT',
        C,
        [("EventLog", AE, "")],
    ),
    (
        "20221222153652_refactor_schema_generic_pub_sub_model",
        'ALTER TABLE "RegisteredWebhook" DROP CONSTRAINT "RegisteredWebhook_triggerId_fkey"',
        C,
        [("RegisteredWebhook", AE, "")],
    ),
    # Indexes: SHARE (writes wait) while built; unique ones refuse old duplicates.
    (
        "20230525134604_add_missing_connections",
        'CREATE INDEX "_JobRunToMissingApiConnection_B_index"',
        C,
        [("_JobRunToMissingApiConnection", SH, BUILD)],
    ),
    (
        "20231115142936_add_webhook_source",
        'CREATE INDEX "KeyValueItem_key_idx"',
        C,
        [("KeyValueItem", SH, BUILD)],
    ),
    (
        "20231204163703_add_composite_index_to_triggerdotdev_events_to_speed_up_organization_queries",
        "CREATE INDEX idx_event_time_organization_id",
        C,
        [("run_executions", SH, BUILD)],
    ),
    (
        "20230927160010_add_data_migrations",
        'CREATE UNIQUE INDEX "DataMigration_name_key"',
        COND,
        [("DataMigration", SH, BUILD)],
    ),
    (
        "20230329120440_add_job_models",
        'CREATE UNIQUE INDEX "JobVersion_jobId_version_key"',
        COND,
        [("JobVersion", SH, BUILD)],
    ),
    (
        "20230305201615_make_repo_project_name_unique_and_add_org",
        "CREATE UNIQUE INDEX",
        COND,
        [("RepositoryProject", SH, BUILD)],
    ),
    # DROP INDEX: ACCESS EXCLUSIVE on its table (named by review.py); compatible.
    (
        "20230425162613_add_action_identifier_to_event_rule",
        'DROP INDEX "JobEventRule_taskId_key"',
        C,
        [("index:JobEventRule_taskId_key", AE, "")],
    ),
    (
        "20230307160247_add_version_column_to_deployment",
        "DROP INDEX",
        C,
        [("index:ProjectDeployment_projectId_commitHash_key", AE, "")],
    ),
    # DROP TABLE breaks old readers.
    (
        "20230512085413_schema_redesign_for_new_system",
        'DROP TABLE "EventRule"',
        B,
        [("EventRule", AE, "")],
    ),
    (
        "20230518134021_polymorphic_event_dispatching",
        'DROP TABLE "JobTrigger"',
        B,
        [("JobTrigger", AE, "")],
    ),
    (
        "20221222153652_refactor_schema_generic_pub_sub_model",
        'DROP TABLE "WorkflowTrigger"',
        B,
        [("WorkflowTrigger", AE, "")],
    ),
    # New objects; a CREATE TABLE with inline foreign keys would lock their targets.
    ("20230616104748_add_integration_definition", 'CREATE TABLE "IntegrationDefinition"', C, []),
    ("20230425103833_add_job_alias_model", 'CREATE TABLE "JobAlias"', C, []),
    ("20231115134828_add_events_schema_and_tables", "CREATE SCHEMA IF NOT EXISTS", C, []),
    (
        "20230213113228_add_status_to_org_template",
        'CREATE TYPE "OrganizationTemplateStatus"',
        C,
        [],
    ),
    ("20230615152126_revamp_integration_schema", 'CREATE TYPE "ConnectionType"', C, []),
    # Enums: a new value is compatible; renaming or dropping a type the old client casts to
    # breaks it.
    ("20230330123046_add_waiting_status", 'ALTER TYPE "TaskStatus" ADD VALUE', C, []),
    ("20230307094704_added_more_states_to_deployment_status", "ALTER TYPE", C, []),
    ("20230115194010_add_scheduler_source_model", 'ALTER TYPE "ExternalSourceType" RENAME', B, []),
    ("20230119183126_removed_archived_status", 'ALTER TYPE "WorkflowStatus" RENAME', B, []),
    ("20230512085413_schema_redesign_for_new_system", 'DROP TYPE "JobEventAction"', B, []),
    ("20230614135014_change_endpoint_source_enum", 'DROP TYPE "EndpointIndexSource_old"', B, []),
    # Data changes: conditional, ROW EXCLUSIVE.
    (
        "20221216125550_added_runtime_environment_title",
        'UPDATE "RuntimeEnvironment" SET "title" = \'Production\'',
        COND,
        [("RuntimeEnvironment", RE, "")],
    ),
    (
        "20231121154545_seed_job_counter_tables",
        'INSERT INTO "JobCounter"',
        COND,
        [("JobCounter", RE, "")],
    ),
    ("20230724074140_changed", 'UPDATE "EventDispatcher"', COND, [("EventDispatcher", RE, "")]),
    ("20231024122736_runtime_environment_shortcodes", "DO $$", COND, []),
    # An unnamed CREATE INDEX is not analysed as a schema change: answered by hand.
    (
        "20231115134828_add_events_schema_and_tables",
        "CREATE INDEX ON triggerdotdev_events",
        COND,
        [("run_executions", SH, BUILD)],
    ),
]

WRITTEN = [
    ('CREATE INDEX CONCURRENTLY "a_idx" ON "User" ("email")', C, [("User", SUE, BUILD)]),
    ('DROP INDEX CONCURRENTLY "a_idx"', C, [("index:a_idx", SUE, "")]),
    (
        'ALTER TABLE "Post" ADD CONSTRAINT "p_fk" FOREIGN KEY ("a") REFERENCES "User" ("id")'
        " NOT VALID",
        COND,
        [("Post", SRE, ""), ("User", SRE, "")],
    ),
    ('ALTER TABLE "Post" VALIDATE CONSTRAINT "p_fk"', COND, [("Post", SUE, SCAN)]),
    ('ALTER TABLE "Post" ADD CONSTRAINT "c" CHECK ("n" > 0)', COND, [("Post", AE, SCAN)]),
    ('ALTER TABLE "Post" ADD CONSTRAINT "c" CHECK ("n" > 0) NOT VALID', COND, [("Post", AE, "")]),
    ('ALTER TABLE "Post" ADD CONSTRAINT "u" UNIQUE ("slug")', COND, [("Post", AE, BUILD)]),
    (
        'ALTER TABLE "Post" ADD COLUMN "uid" UUID NOT NULL DEFAULT gen_random_uuid()',
        C,
        [("Post", AE, REWRITE)],
    ),
    ('ALTER TABLE "Post" ADD COLUMN "n" SERIAL NOT NULL', C, [("Post", AE, REWRITE)]),
    (
        'ALTER TABLE "Post" ADD COLUMN "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP',
        C,
        [("Post", AE, "")],
    ),
    ('ALTER TABLE "Post" RENAME TO "Article"', B, [("Post", AE, "")]),
    ('DELETE FROM "Post" WHERE "draft"', COND, [("Post", RE, "")]),
    ('TRUNCATE "Post"', COND, [("Post", AE, "")]),
    (
        'CREATE TRIGGER t BEFORE INSERT ON "Post" FOR EACH ROW EXECUTE FUNCTION f()',
        COND,
        [("Post", SRE, "")],
    ),
    (
        'CREATE TABLE "Comment" ("id" TEXT PRIMARY KEY, "postId" TEXT REFERENCES "Post" ("id"))',
        C,
        [("Post", SRE, "")],
    ),
]


def _statement(migration: str, start: str):
    script = (MIGRATIONS / migration / "migration.sql").read_text()
    found = [s for s in split_statements(script) if " ".join(s.text.split()).startswith(start)]
    assert found, f"{migration} has no statement starting {start!r}"
    return found[0]


def _locks(node) -> list[tuple[str, LockMode, str]]:
    return [(lock.table.name, lock.mode, lock.work) for lock in locks_of(node)]


def _compatibility(node) -> Compatibility:
    return worst(classify(change).compatibility for change in changes_of(node))


def test_the_corpus_has_at_least_60_statements():
    assert len(REAL) + len(WRITTEN) >= 60
    assert len(REAL) >= 60


@pytest.mark.parametrize(("migration", "start", "compatibility", "locks"), REAL)
def test_real_statement(migration, start, compatibility, locks):
    statement = _statement(migration, start)
    assert _compatibility(statement.node) == compatibility, statement.text
    assert _locks(statement.node) == locks, statement.text


@pytest.mark.parametrize(("sql", "compatibility", "locks"), WRITTEN)
def test_written_statement(sql, compatibility, locks):
    (statement,) = split_statements(sql)
    assert _compatibility(statement.node) == compatibility
    assert _locks(statement.node) == locks


def test_breaking_changes_say_how_to_make_them_safely():
    for migration, start, compatibility, _ in REAL:
        if compatibility != B:
            continue
        for change in changes_of(_statement(migration, start).node):
            finding = classify(change)
            if finding.compatibility == B:
                assert finding.advice, change.description
