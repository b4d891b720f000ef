"""The ``rollback-bot`` command. A wrong setting prints one line naming it and what to do,
and exits 2; never a traceback."""

from __future__ import annotations

import argparse
import signal
import sys

from bot.errors import ConfigError

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollback-bot", description="Slack chatops for the database rollback runbook."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)"
    )
    serve.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    serve.add_argument(
        "--port",
        type=_port,
        default=3000,
        help="HTTP port (default 3000); in Socket Mode only /healthz and /readyz listen on it",
    )
    serve.add_argument(
        "--host",
        default="0.0.0.0",
        help="HTTP listen address (default 0.0.0.0; 127.0.0.1 for local only)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line, with the operation id (default text)",
    )
    sandbox = sub.add_parser(
        "sandbox",
        help="try the bot here: local PostgreSQL, AWS (moto) and a Slack look-alike page",
    )
    sandbox.add_argument(
        "--port", type=_port, default=3100, help="port of the Slack look-alike page (default 3100)"
    )
    doctor = sub.add_parser(
        "doctor",
        help="check, per environment, what the runbooks will need (exit 1 when a check fails)",
    )
    doctor.add_argument("--env", help="one environment (default: every one)")
    doctor.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    state = sub.add_parser("state", help="the state database: back it up, check it, migrate it")
    state_sub = state.add_subparsers(dest="state_command", required=True, metavar="ACTION")
    state_backup = state_sub.add_parser(
        "backup", help="copy the state database to FILE (safe while the bot runs)"
    )
    state_backup.add_argument("file", metavar="FILE", help="where to write the copy (a new file)")
    state_check = state_sub.add_parser(
        "check", help="integrity, schema version and the audit log's hash chain"
    )
    for action in (state_backup, state_check):
        action.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    _state_migrate_parser(state_sub)
    from bot import terminal
    from bot.prevention import check_command, snapshot_command

    terminal.add_parser(sub)
    check_command.add_parser(sub)
    snapshot_command.add_parser(sub)
    return parser


def _state_migrate_parser(state_sub) -> None:
    migrate = state_sub.add_parser(
        "migrate",
        help="copy the whole state to an empty PostgreSQL database (stop every bot process first)",
    )
    migrate.add_argument("--config", help="TOML config file (default: $ROLLBACK_BOT_CONFIG)")
    target = migrate.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", help="the target: postgresql://USER:PASSWORD@HOST/DB")
    target.add_argument(
        "--to-env", metavar="VAR", help="the environment variable holding the target URL"
    )


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be 0-65535, got {port}")
    return port


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "sandbox":
            return sandbox(args)
        if args.command == "cli":
            return break_glass(args)
        if args.command == "state":
            return state_migrate(args) if args.state_command == "migrate" else state(args)
        if args.command == "check":
            from bot.prevention import check_command

            return check_command.run(args)
        if args.command == "doctor":
            return doctor(args)
        if args.command == "snapshot":
            from bot.prevention import snapshot_command

            return snapshot_command.run(args)
    except ConfigError as error:
        print(f"rollback-bot: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def load_settings(config_arg: str | None):
    from bot.settings import Settings, config_path, load_config, slack_settings_from_env

    slack = slack_settings_from_env()
    config = load_config(config_path(config_arg))
    return Settings(slack=slack, config=config)


def serve(args) -> int:
    settings = load_settings(args.config)
    from bot import logs, serving

    serving.check_before_start(settings)

    secrets = [settings.slack.bot_token.reveal(), settings.slack.signing_secret.reveal()]
    if settings.slack.app_token:
        secrets.append(settings.slack.app_token.reveal())
    secrets += [
        e.database_url.reveal() for e in settings.config.environments.values() if e.database_url
    ]
    logs.configure(args.log_level, secrets, args.log_format)
    # uvicorn re-raises a SIGTERM it caught once it has shut down; as SystemExit it then
    # unwinds through the finally below, so the services and the socket stop cleanly.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    socket = None
    if settings.slack.socket_mode:
        from bot.socket_mode import SocketModeRunner

        # Connect before anything starts: a refused app token is one line and exit 2
        # (SocketModeError is a ConfigError); envelopes wait until accept(app).
        socket = SocketModeRunner(settings.slack.app_token.reveal(), api_url=settings.slack.api_url)
        socket.start()

    from bot.app import build_services

    services = build_services(settings)
    try:
        app = _build_app(services, settings)
    except ConfigError:
        if socket:
            socket.stop()
        services.core.store.close()
        raise
    services.start()
    serving.settle_heap()
    try:
        if socket:
            from bot.probes import probe_server
            from bot.socket_mode import socket_mode_probes

            socket.accept(app)
            probes = serving.instrument(socket_mode_probes(socket), services)
            probe_server(probes, args.host, args.port, args.log_level).run()
        else:
            _serve_http(app, services, settings, args)
    finally:
        if socket:
            socket.stop()
        services.stop()
    return 0


def _build_app(services, settings):
    """Bolt's App, which asks Slack's auth.test first: a refused token or an unreachable
    Slack is one line and exit 2, like any other setting."""
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackClientError

    from bot.app import build_app

    try:
        return build_app(services)
    except BoltError as error:
        raise ConfigError(
            f"Slack rejected SLACK_BOT_TOKEN at start-up ({_reason(error)}); check the token"
            " and SLACK_API_URL."
        ) from None
    except (OSError, SlackClientError) as error:
        # serving.check_before_start asked Slack a moment ago; it went away since.
        raise ConfigError(
            f"lost Slack while starting ({type(error).__name__}); start again."
        ) from None


def _serve_http(app, services, settings, args) -> None:
    from bot import serving
    from bot.probes import Probes
    from bot.server import RollbackBotASGI, uvicorn_server

    probes = serving.instrument(Probes("http"), services)
    asgi = RollbackBotASGI(
        app,
        probes,
        on_refused=services.refused_request,
        signing_secret=settings.slack.signing_secret.reveal(),
    )
    uvicorn_server(asgi, args.host, args.port, args.log_level).run()


def break_glass(args) -> int:
    """Break-glass: the runbooks from a terminal; needs the config, not Slack's tokens."""
    from bot import break_glass, logs, terminal
    from bot.settings import config_path

    # The whole config, not only [break_glass] users, decides who may approve what
    # (approvers, protected): read from a file only its administrators can change.
    config = break_glass.load_config(config_path(args.config))
    urls = [e.database_url.reveal() for e in config.environments.values() if e.database_url]
    logs.configure("warning", urls)
    return terminal.run(args, config)


def doctor(args) -> int:
    """Every check on its own line, by section; exit 1 when one fails."""
    from bot import doctor as checks
    from bot import logs
    from bot.errors import UserError
    from bot.settings import config_path, load_config, slack_settings_from_env

    config = load_config(config_path(args.config))
    logs.configure("error", [])
    try:
        slack = slack_settings_from_env()
    except ConfigError as error:
        slack = error
    try:
        sections = checks.run(config, slack, args.env)
    except UserError as error:  # an unknown --env
        raise ConfigError(str(error)) from None
    print(checks.report(sections))
    return 0 if all(section.ok for section in sections) else 1


def state(args) -> int:
    """``state backup FILE`` / ``state check``: each finding on its own line; exit 1 when
    one fails."""
    from pathlib import Path

    from bot.settings import config_path, load_config
    from bot.store import maintenance

    config = load_config(config_path(args.config))
    if not isinstance(config.state_db, Path):
        raise ConfigError(
            f"state {args.state_command} reads a SQLite state file; this config's state is on"
            " PostgreSQL: back it up with pg_dump (the audit log's append-only trigger and"
            " grants are the database's own)."
        )
    if args.state_command == "backup":
        findings = maintenance.backup(config.state_db, Path(args.file))
        print(f"Copied {config.state_db} to {args.file}; the copy:")
    else:
        findings = maintenance.check(config.state_db)
        print(f"State database {config.state_db}:")
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


def state_migrate(args) -> int:
    """Copies the configured state (e.g. the SQLite file) into an empty database (e.g. the
    PostgreSQL the replicas will share); the config is then pointed at the new one."""
    import os

    from bot.redaction import Secret, redact_url
    from bot.settings import config_path, load_config
    from bot.store import Store, is_postgres_url
    from bot.store.copy import copy_state

    config = load_config(config_path(args.config))
    url = args.to if args.to_env is None else os.environ.get(args.to_env, "")
    if not is_postgres_url(url):
        where = f"${args.to_env}" if args.to_env else "--to"
        raise ConfigError(f"{where} must be a postgresql:// URL of an empty database.")
    source, target = Store(config.state_db), Store(Secret(url))
    try:
        counts = copy_state(source, target)
    finally:
        source.close()
        target.close()
    print(f"Copied the state to {redact_url(url)}:")
    for table, count in counts.items():
        print(f"  {table}: {count} rows")
    print(
        'Now point the config at it (state_db_env = "VAR" holding the URL, or state_db ='
        " the URL) and start the replicas."
    )
    return 0


def sandbox(args) -> int:
    """Starts everything, prints the page's URL, and runs until Ctrl-C (or SIGTERM)."""
    import signal
    import threading

    try:
        from bot.sandbox.postgres import PostgresRigError
        from bot.sandbox.run import Sandbox
    except ImportError as error:
        raise ConfigError(
            f"the sandbox needs {error.name}: pip install -e '.[sandbox]' (or '.[dev]')."
        ) from None

    def say(line: str) -> None:
        print(line, flush=True)

    say("rollback-bot sandbox: starting PostgreSQL, AWS (moto), fake Slack and the bot...")
    box = Sandbox(port=args.port, say=say)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        box.start()
    except PostgresRigError as error:
        raise ConfigError(f"cannot start PostgreSQL for the sandbox: {error}") from None
    say(f"""
Open {box.url} in your browser (you are alice; switch user at the top left).
Try:  /rollback status --env staging
      /rollback resolve 20251208120000_problematic_migration --env staging
      (staging is protected: switch to bob to approve)
      /rollback pitr --env production   (a real restore into a second database)
Ctrl-C stops everything and deletes the temp files.
SANDBOX_URL={box.url}""")
    try:
        stopping.wait()
    finally:
        say("rollback-bot sandbox: stopping...")
        box.stop()
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


def _reason(error: Exception) -> str:
    text = str(error)
    for code in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
        if code in text:
            return code
    return "auth.test failed"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if len(sys.argv) > 1 else None))
