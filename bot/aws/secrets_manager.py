"""Switching traffic: the environment's Secrets Manager secret ({"url": ...}) is pointed at
the restored instance, and the switch can be undone exactly.

Secrets Manager keeps the version that was current as AWSPREVIOUS when a new value is put;
undo moves the AWSCURRENT label back to that version id (UpdateSecretVersionStage), so the
application reads byte for byte what it read before, other JSON keys included. Values
travel as ``Secret`` and only redacted URLs are ever shown.

moto gap: after UpdateSecretVersionStage, moto's GetSecretValue without VersionStage still
returns the version it created last (it does not follow the label). AWS returns the
AWSCURRENT version. This module always asks for VersionStage="AWSCURRENT" explicitly.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.aws.rds import aws_call, aws_client
from bot.errors import ConflictError, UserError
from bot.redaction import Secret, register, where

CURRENT = "AWSCURRENT"
# A fixed namespace makes the ClientRequestToken a function of the operation: a switch
# retried for the same operation creates no second version (PutSecretValue is idempotent
# on the token).
_TOKENS = uuid.UUID("6f1c1a52-0a7e-4d54-9a55-3b7c4f1d2e90")


def secrets_client() -> Any:
    return aws_client("secretsmanager")


@dataclass(frozen=True)
class SecretVersion:
    version_id: str
    value: Secret  # the whole SecretString

    @property
    def url(self) -> Secret:
        try:
            return Secret(json.loads(self.value.reveal())["url"])
        except (ValueError, KeyError, TypeError):
            raise UserError(
                'The database secret is not JSON with a "url" key.',
                'Store it as {"url": "postgresql://..."}.',
                code="database_secret",
            ) from None


def current_version(secret_id: str, client: Any = None) -> SecretVersion:
    client = client or secrets_client()
    with aws_call(f"read secret {secret_id}"):
        answer = client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
    version = SecretVersion(answer["VersionId"], Secret(answer.get("SecretString") or ""))
    with contextlib.suppress(UserError):  # not JSON with a "url": refused where it is read
        register(version.url)
    return version


def url_with_endpoint(url: Secret, host: str, port: int | None) -> Secret:
    """The same URL (user, password, database, parameters) on another host and port."""
    parts = urlsplit(url.reveal())
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return Secret(urlunsplit(parts._replace(netloc=netloc)))


def shown(url: Secret) -> str:
    """host:port/database: messages and params never hold a URL (its query may carry a
    password, and a user name is nobody's business in a channel)."""
    return where(url)


@dataclass(frozen=True)
class Switch:
    secret_id: str
    previous_version_id: str
    switched_version_id: str


def switch_url(secret_id: str, new_url: Secret, operation_id: str, client: Any = None) -> Switch:
    """Puts a new version whose "url" is new_url, keeping the secret's other JSON keys."""
    client = client or secrets_client()
    current = current_version(secret_id, client)
    current.url  # noqa: B018 - refuses a secret without a url before writing anything
    value = json.loads(current.value.reveal())
    value["url"] = new_url.reveal()
    token = str(uuid.uuid5(_TOKENS, f"{operation_id}:{secret_id}"))
    if current.version_id == token:
        raise ConflictError(
            f"Secret `{secret_id}` already holds this operation's switch.", code="switched"
        )
    with aws_call(f"update secret {secret_id}"):
        answer = client.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps(value), ClientRequestToken=token
        )
    return Switch(secret_id, current.version_id, answer["VersionId"])


def undo_switch(switch: Switch, client: Any = None) -> str:
    """Makes the previous version current again. Refuses when the secret changed since the
    switch (someone else's value must not be thrown away); a no-op when already undone."""
    client = client or secrets_client()
    current = current_version(switch.secret_id, client)
    if current.version_id == switch.previous_version_id:
        return "already undone: the previous version is current"
    if current.version_id != switch.switched_version_id:
        raise ConflictError(
            f"Secret `{switch.secret_id}` changed after the switch (current version"
            f" {current.version_id}); the undo would discard that change, so nothing was done.",
            "Check the secret's versions in the AWS console and restore by hand.",
            code="secret_changed",
        )
    with aws_call(f"restore version {switch.previous_version_id} of {switch.secret_id}"):
        client.update_secret_version_stage(
            SecretId=switch.secret_id,
            VersionStage=CURRENT,
            MoveToVersionId=switch.previous_version_id,
            RemoveFromVersionId=switch.switched_version_id,
        )
    return f"version {switch.previous_version_id} is current again"
