"""`rollback-bot snapshot --env NAME [--before-deploy]`: the runbook's manual snapshot before
migrations, from a pipeline. With ``--before-deploy`` nothing is taken when nothing is
pending or a snapshot newer than the last change in the migration history exists (the
deploy guard's rule, ``snapshot.fresh_snapshot``; a retried pipeline takes one, not
two), and the command waits until the snapshot is available, so the deploy step after it
starts from a finished backup. Exit 0 when there is one (or none is
needed), 1 when it failed or is not ready in time, 2 for a wrong setting."""

from __future__ import annotations

import getpass
import os
import sys
import time

from bot.errors import ConfigError, UserError

EXIT_OK, EXIT_FAIL = 0, 1


def add_parser(sub) -> None:
    snap = sub.add_parser(
        "snapshot",
        help="take the manual pre-migration snapshot (tagged with the pending migrations)",
    )
    snap.add_argument("--env", required=True, help="the environment (its rds_instance_id)")
    snap.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    snap.add_argument(
        "--before-deploy",
        action="store_true",
        help="for pipelines: skip when nothing is pending or a fresh snapshot exists; wait"
        " until it is available",
    )
    snap.add_argument(
        "--wait-minutes", type=float, default=60, help="with --before-deploy (default 60)"
    )


def run(args) -> int:
    from bot.clock import utcnow
    from bot.runbooks.snapshot import (
        fresh_snapshot,
        pending_of,
        take_snapshot,
        wait_until_available,
    )
    from bot.settings import config_path, load_config
    from bot.store.sqlite import Store

    config = load_config(config_path(args.config))
    try:
        env = config.environment(args.env)
    except UserError as error:
        raise ConfigError(str(error)) from None
    actor = os.environ.get("ROLLBACK_BOT_USER") or f"cli:{getpass.getuser()}"
    store = Store(config.state_db)
    try:
        snapshot = None
        if args.before_deploy:
            pending = pending_of(env)
            if not pending.migrations:
                print(f"Nothing pending on {env.name}: no snapshot needed.")
                return EXIT_OK
            snapshot = fresh_snapshot(env, pending)
            if snapshot is not None:
                print(f"{snapshot.id} was taken after {pending.since}: kept.")
        if snapshot is None:
            snapshot = take_snapshot(store, env, actor, utcnow())
            print(f"Snapshot {snapshot.id} requested, kept until {snapshot.retain_until}.")
        if args.before_deploy:
            wait_until_available(
                snapshot,
                timeout_seconds=args.wait_minutes * 60,
                poll_seconds=config.pitr_poll_seconds,
                sleep=lambda s: time.sleep(s) is None,
            )
            print(f"Snapshot {snapshot.id} is available: deploy may go ahead.")
    except UserError as error:
        if error.code == "config":  # no rds_instance_id or migrations_dir: a wrong setting
            raise ConfigError(str(error)) from None
        print(f"rollback-bot snapshot: {error}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        store.close()
    return EXIT_OK
