"""`/rollback check`: the Migration Safety Checklist for an environment's pending migrations
(or one named), answered from facts (bot.prevention.review) against its live database; the
questions only a person can answer; and the record of who reviewed which migration file.

A review is an audit record (``check_reviewed``, no operation) holding the migration's
name and checksum: an edited file is a different migration and needs its own review. The
deploy guard reads them here. No Slack here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.checklists import ChecklistItem
from bot.database import connect
from bot.errors import ConflictError, UserError
from bot.prevention.directory import review_directory
from bot.prevention.report import review_dict
from bot.prevention.review import MigrationReview
from bot.prisma.migrations_dir import read_migrations_dir
from bot.prisma.names import resolve_migration_name
from bot.prisma.status import migration_status
from bot.runbooks.status import migrations_dir
from bot.settings import Config, Environment
from bot.store.records import AuditRecord, EventKind

# The runbook's "Before Deploying Migrations", word for word, and the checklist question the
# bot can answer only for the schema: the code's side of them is known to a person alone.
PERSON_QUESTIONS = (
    ChecklistItem("staging", "Always test in staging first", ""),
    ChecklistItem(
        "both_schemas",
        "Can the application work with both old and new schema?",
        "the code running now works before and after it",
    ),
    ChecklistItem("rollback_sql", "Have rollback SQL ready", "for complex migrations"),
    ChecklistItem("feature_flags", "Use feature flags", "for related code changes"),
    ChecklistItem("low_traffic", "Deploy during low-traffic periods", ""),
)
PERSON_QUESTION_IDS = tuple(item.id for item in PERSON_QUESTIONS)
NOTE_MAX = 1000


def check_environment(
    config: Config, env: Environment, name: str | None = None
) -> tuple[MigrationReview, ...]:
    """Reviews of ``name`` (a pending migration, by its exact name), or of every
    pending migration of ``env``, on its live database (read-only)."""
    directory = migrations_dir(env)
    with connect(env) as conn:
        names: list[str] = []
        if name:
            status = migration_status(conn, directory)
            names = [resolve_migration_name(name, status)]
            if names[0] not in status.pending:
                raise ConflictError(
                    f"`{names[0]}` is not pending on {env.name}: a check reviews a migration"
                    " before it is deployed.",
                    f"See `/rollback status --env {env.name}` for what is pending.",
                    code="not_pending",
                )
        return review_directory(
            directory, conn=conn, names=names, statement_timeout=config.sql_statement_timeout
        )


@dataclass(frozen=True)
class PersonAnswers:
    confirmed: tuple[str, ...]  # PERSON_QUESTIONS ids the reviewer ticked
    note: str = ""

    @property
    def unconfirmed(self) -> tuple[str, ...]:
        return tuple(i for i in PERSON_QUESTION_IDS if i not in self.confirmed)


def current_checksum(env: Environment, migration: str) -> str | None:
    local = read_migrations_dir(migrations_dir(env)).get(migration)
    return local.checksum if local else None


def record_review(
    store,
    config: Config,
    env: Environment,
    migration: str,
    checksum: str,
    reviewer: str,
    answers: PersonAnswers,
    now: datetime,
) -> tuple[MigrationReview, AuditRecord]:
    """Reviews the migration again (the file as it is now must be the one the reviewer
    saw) and records who reviewed it, with the bot's answers and theirs."""
    if current_checksum(env, migration) != checksum:
        raise ConflictError(
            f"`{migration}` changed since its check card was made; nothing was recorded.",
            f"Run `/rollback check {migration} --env {env.name}` again.",
            code="check_stale",
        )
    (review,) = check_environment(config, env, migration)
    if len(answers.note) > NOTE_MAX:
        raise UserError(f"The note is longer than {NOTE_MAX} characters.", "Shorten it.")
    data = review_dict(review)
    record = store.append_audit(
        None,
        reviewer,
        EventKind.CHECK_REVIEWED,
        f"Check of {migration} on {env.name} reviewed ({data['verdict']})",
        detail={
            "environment": env.name,
            "migration": migration,
            "checksum": checksum,
            "verdict": data["verdict"],
            "answers": data["answers"],
            "confirmed": list(answers.confirmed),
            "unconfirmed": list(answers.unconfirmed),
            "note": answers.note,
        },
        at=now,
    )
    return review, record


def reviews_of(store, env_name: str) -> dict[tuple[str, str], AuditRecord]:
    """The newest review of each (migration, checksum) in ``env_name``."""
    found: dict[tuple[str, str], AuditRecord] = {}
    for record in store.audit_of_kind(EventKind.CHECK_REVIEWED):
        detail = record.detail
        if detail.get("environment") == env_name:
            found[(detail.get("migration"), detail.get("checksum"))] = record
    return found
