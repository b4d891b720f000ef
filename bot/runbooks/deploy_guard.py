"""The deploy guard: before `/rollback deploy` (and the re-run after resolve) applies
pending migrations in a guarded environment (``deploy_guard``; by default production, where
the runbook's backup table takes a manual snapshot before migrations), the runbook's
Prevention Best Practices hold:

- "Deploy during low-traffic periods": with ``deploy_windows`` configured, now is inside
  one, or the requester gave an override with a reason (audited in the thread);
- the Migration Safety Checklist: every pending migration has a check card reviewed by a
  person (`/rollback check`), for the exact file (its checksum) about to be applied;
- "Create backup before destructive changes": a manual snapshot newer than the database's
  last change in the migration history (``snapshot.pending_in``: the newest applied
  migration's finish, or a failed or rolled-back attempt at a pending one), or one is
  taken now and waited for.

The reviews come from the store, which steps cannot read: the front end that starts the
deploy puts them in the params (``reviews_for_start``); the step checks them against what
is pending when it runs. No Slack here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bot.clock import shown_utc, utcnow
from bot.engine.model import StepContext
from bot.errors import ConflictError
from bot.prevention.windows import inside_any
from bot.prisma.migrations_dir import read_migrations_dir
from bot.runbooks.check import reviews_of
from bot.runbooks.snapshot import (
    create_snapshot,
    fresh_snapshot,
    pending_of,
    wait_until_available,
)
from bot.settings import Environment
from bot.text import plural

SNAPSHOT_POLL_SECONDS = 30
SNAPSHOT_WAIT_SECONDS = 2 * 60 * 60


@dataclass(frozen=True)
class Review:
    checksum: str
    reviewer: str
    at: str
    verdict: str


def reviews_for_start(store, env: Environment) -> dict[str, dict]:
    """The reviewed check card of each local migration file as it is now (a file edited
    since its review is left out): what a deploy's guard step is started with."""
    if not env.guards_deploys or env.migrations_dir is None:
        return {}
    local = {m.name: m.checksum for m in read_migrations_dir(env.migrations_dir).migrations}
    found = {}
    for (name, checksum), record in reviews_of(store, env.name).items():
        if checksum and local.get(name) == checksum:
            found[name] = asdict(
                Review(checksum, record.actor, record.at, record.detail.get("verdict", ""))
            )
    return found


def guard(ctx: StepContext) -> str:
    env = ctx.environment
    if not env.guards_deploys:
        return f"no deploy guard on {env.name}"
    pending = ctx.params.get("pending", [])
    if not pending:
        return "nothing pending"
    notes = [_window(ctx), _cards(ctx, pending, ctx.params.get("pending_checksums", {}))]
    notes.append(_snapshot(ctx))
    return "; ".join(notes)


def guard_plan(params: dict) -> str:
    """What the approver of a guarded deploy is shown besides the migrations."""
    lines = []
    if params.get("snapshot"):
        lines.append(f"snapshot before it: {params['snapshot']}")
    reviews = params.get("reviews", {})
    for name in params.get("pending", []):
        if name in reviews:
            review = reviews[name]
            lines.append(
                f"check card {name}: reviewed by {review['reviewer']} ({review['verdict']})"
            )
    if params.get("window_override"):
        lines.append(f"outside the deploy windows, override: {params['window_override']}")
    return "".join(f"\n{line}" for line in lines)


def _window(ctx: StepContext) -> str:
    env, now = ctx.environment, utcnow()
    if not env.deploy_windows:
        return "no deploy windows configured"
    inside = inside_any(env.deploy_windows, now)
    if inside is not None:
        return f"inside the deploy window {inside.text} (UTC)"
    windows = ", ".join(w.text for w in env.deploy_windows)
    reason = ctx.params.get("window_override", "")
    if not reason:
        raise ConflictError(
            f"{shown_utc(now)} is outside {env.name}'s deploy windows ({windows}, UTC): the"
            " runbook deploys during low-traffic periods. Nothing was applied.",
            f"Deploy inside a window, or override with a reason: `/rollback deploy --env {env.name}"
            ' --override-window "why now"` (audited).',
            code="outside_deploy_window",
        )
    ctx.say(
        f"Outside the deploy windows ({windows}, UTC) at {shown_utc(now)}: deploying anyway on"
        f" <@{ctx.operation.requester}>'s override: {reason}"
    )
    return f"outside the deploy windows, overridden: {reason}"


def _cards(ctx: StepContext, pending: list[str], checksums: dict[str, str]) -> str:
    reviews = ctx.params.get("reviews", {})
    missing = [
        name
        for name in pending
        if reviews.get(name, {}).get("checksum") != checksums.get(name) or not checksums.get(name)
    ]
    if missing:
        env = ctx.environment.name
        listed = ", ".join(f"`{n}`" for n in missing)
        raise ConflictError(
            f"{plural(len(missing), 'pending migration')}"
            f" {'has' if len(missing) == 1 else 'have'} no reviewed check card for the file"
            f" about to be applied: {listed}. Nothing was applied.",
            f"Review each with `/rollback check <migration> --env {env}` (Answer the"
            " checklist), then deploy again.",
            code="check_cards_missing",
        )
    lines = [
        f"{n}: reviewed by <@{reviews[n]['reviewer']}> ({reviews[n]['verdict']})" for n in pending
    ]
    ctx.say("Check cards: " + "; ".join(lines))
    return f"{plural(len(pending), 'check card')} reviewed"


def _snapshot(ctx: StepContext) -> str:
    env = ctx.environment
    recorded = ctx.params.get("snapshot", "")
    pending = pending_of(env)
    found = fresh_snapshot(env, pending)
    if found is not None and found.id != recorded:
        ctx.record(snapshot=found.id)
        ctx.say(f"Snapshot {found.id} was taken after {pending.since}: kept.")
    if found is None:
        found = create_snapshot(env, pending, utcnow())
        ctx.record(snapshot=found.id)
        ctx.say(
            f"No snapshot since {pending.since}: took {found.id}, kept until {found.retain_until}."
        )
    wait_until_available(
        found,
        timeout_seconds=SNAPSHOT_WAIT_SECONDS,
        poll_seconds=SNAPSHOT_POLL_SECONDS,
        sleep=ctx.sleep,
    )
    return f"snapshot {found.id} available"
