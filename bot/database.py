"""An environment's database: where its URL comes from, and a connection to it.

The URL is a secret: it is resolved here (from the config, an environment variable, or an
AWS Secrets Manager secret holding JSON {"url": ...}) and handed to psycopg, never shown.
Errors say which source failed and what to do, without the URL.
"""

from __future__ import annotations

import json
import os

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.rds import aws_client
from bot.errors import UserError
from bot.prisma.connection import connect_prisma_url
from bot.redaction import Secret, register, scrub, secret_values
from bot.settings import Environment

APPLICATION_NAME = "rollback-bot"


def database_url(env: Environment) -> Secret:
    if env.database_url is not None:
        return env.database_url
    if env.database_url_env:
        value = os.environ.get(env.database_url_env)
        if not value:
            raise UserError(
                f"The {env.name} database URL is not available: environment variable"
                f" {env.database_url_env} is not set where the bot runs.",
                "Set it and restart the bot.",
                code="database_url",
            )
        register(value)
        return Secret(value)
    url = _url_from_secret(env.name, env.database_secret_id)
    register(url)
    return Secret(url)


def _url_from_secret(env_name: str, secret_id: str) -> str:
    try:
        # AWSCURRENT explicitly: what a traffic switch (and its undo) moves.
        value = aws_client("secretsmanager").get_secret_value(
            SecretId=secret_id, VersionStage="AWSCURRENT"
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise UserError(
            f"Cannot read the {env_name} database secret `{secret_id}` ({code}).",
            "Check the secret id in the config and the bot's IAM permissions"
            " (secretsmanager:GetSecretValue).",
            code="database_secret",
        ) from None
    except BotoCoreError as error:
        raise UserError(
            f"Cannot reach AWS Secrets Manager ({type(error).__name__}).",
            "Check the bot's AWS region and network.",
            code="database_secret",
        ) from None
    try:
        url = json.loads(value.get("SecretString") or "")["url"]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f'The {env_name} database secret `{secret_id}` is not JSON with a "url" key.',
            'Store it as {"url": "postgresql://..."}.',
            code="database_secret",
        ) from None
    return url


def connect(
    env: Environment, *, autocommit: bool = True, connect_timeout: int = 10
) -> psycopg.Connection:
    """A connection to the environment's database; a failure is a UserError that names the
    environment and PostgreSQL's reason, never the URL or its password."""
    conn = connect_url(
        database_url(env),
        f"the {env.name} database",
        "Check that the database is up and reachable from the bot.",
        connect_timeout=connect_timeout,
    )
    conn.autocommit = autocommit
    return conn


def connect_url(
    url: Secret, what: str, hint: str, *, connect_timeout: int = 10
) -> psycopg.Connection:
    """A connection (autocommit, Prisma's ``?schema=``) to ``url``; a failure is a UserError
    "Cannot connect to <what>: <PostgreSQL's reason>" with the URL and password scrubbed."""
    options = f"application_name={APPLICATION_NAME}&connect_timeout={connect_timeout}"
    sep = "&" if "?" in url.reveal() else "?"
    try:
        return connect_prisma_url(f"{url.reveal()}{sep}{options}")
    except psycopg.OperationalError as error:
        # libpq's last attempt (it tries each address in turn) names the host, port and
        # reason; the tab-indented lines after it are generic hints ("Is the server running").
        attempts = [line for line in str(error).splitlines() if line and not line[0].isspace()]
        last = attempts[-1].removeprefix("connection failed: ") if attempts else ""
        reason = scrub(last or type(error).__name__, secret_values([url.reveal()]))
        raise UserError(
            f"Cannot connect to {what}: {reason}", hint, code="database_unreachable"
        ) from None
