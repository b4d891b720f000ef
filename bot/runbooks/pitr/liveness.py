"""Is the old instance still live? PITR's cleanup asks before anything is deleted, from facts
rather than from the secret's text (an IP address, a CNAME, a Route 53 alias or an RDS Proxy
in the URL all hid the instance from a substring check, and the bot deleted a live one).

Facts, in order: the bot's own record of the switch (the secret must still be at the
version the switch wrote: an undo, or any later change, refuses); no environment of the
bot's config names the instance; the secret's current URL resolved to addresses and
compared with the instance's endpoint (addresses and port); no RDS Proxy routes to it; and
CloudWatch's DatabaseConnections shows no connection lately. Any doubt (a name that does
not resolve, no metric datapoint, an AWS error) refuses, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bot.aws import cloudwatch, rds, secrets_manager
from bot.aws.addresses import Resolver, Unresolvable, addresses
from bot.settings import Config

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Verdict:
    reasons: list[str]  # why it is (or may be) live; empty: not live
    facts: list[str]  # what was checked and found


def check(old: rds.Instance, p: dict, config: Config, resolver: Resolver, now: datetime):
    reasons: list[str] = []
    facts: list[str] = []
    url = _switch_record(p, reasons, facts)
    reasons += [
        f"`{old.id}` is the rds_instance_id of environment `{env.name}` in the bot's config:"
        " update it to the instance that now serves traffic (and restart the bot) first"
        for env in config.environments.values()
        if env.rds_instance_id and env.rds_instance_id.lower() == old.id.lower()
    ]
    if url is not None:
        _same_endpoint(url, old, resolver, reasons, facts)
    for proxy in rds.proxies_routing_to(old.id):
        reasons.append(
            f"RDS Proxy `{proxy.name}` ({proxy.endpoint}) routes to `{old.id}`: applications"
            " connecting through it reach the old instance"
        )
    facts.append("no RDS Proxy routes to it")
    _connections(old, config.pitr_connections_window_minutes, now, reasons, facts)
    return Verdict(reasons, facts)


def _switch_record(p: dict, reasons: list[str], facts: list[str]) -> str | None:
    current = secrets_manager.current_version(p["switch_secret_id"])
    if current.version_id == p.get("switch_previous_version"):
        reasons.append(
            f"secret `{p['switch_secret_id']}` is back at version {current.version_id}, the"
            " one before the switch: the switch was undone and the old instance is live again"
        )
        return None
    if current.version_id != p.get("switch_version"):
        reasons.append(
            f"secret `{p['switch_secret_id']}` changed after the switch (now version"
            f" {current.version_id}, the switch wrote {p.get('switch_version')}): the bot no"
            " longer knows what it points at"
        )
    else:
        facts.append(f"the secret is still at the switch's version {current.version_id}")
    return current.url.reveal()


def _same_endpoint(
    url: str, old: rds.Instance, resolver: Resolver, reasons: list[str], facts: list[str]
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or POSTGRES_PORT
    if not old.address:
        reasons.append(f"RDS shows no endpoint for `{old.id}` (status {old.status})")
        return
    old_port = old.port or POSTGRES_PORT
    try:
        url_addresses = addresses(host, port, resolver)
        old_addresses = addresses(old.address, old_port, resolver)
    except Unresolvable as error:
        reasons.append(f"{error}: whether the secret's URL reaches `{old.id}` cannot be told")
        return
    shared = sorted(url_addresses & old_addresses)
    if shared and port == old_port:
        reasons.append(
            f"the secret's URL host `{host}` resolves to {', '.join(shared)}, the address of"
            f" `{old.id}`'s endpoint, port {port}: applications still connect to it"
        )
        return
    facts.append(
        f"the secret's URL (`{host}` -> {', '.join(sorted(url_addresses))}, port {port}) is"
        f" not `{old.id}`'s endpoint ({', '.join(sorted(old_addresses))}, port {old_port})"
    )


def _connections(
    old: rds.Instance, minutes: float, now: datetime, reasons: list[str], facts: list[str]
) -> None:
    if old.status == "stopped":
        facts.append(f"`{old.id}` is stopped: it accepts no connection")
        return
    most = cloudwatch.most_connections(old.id, now, minutes)
    if most is None:
        reasons.append(
            f"CloudWatch has no DatabaseConnections datapoint for `{old.id}` in the last"
            f" {minutes:g} minutes: whether it is still used cannot be told"
        )
    elif most > 0:
        reasons.append(
            f"`{old.id}` had up to {most:g} database connections in the last {minutes:g}"
            " minutes (CloudWatch DatabaseConnections): something still uses it"
        )
    else:
        facts.append(f"no database connection in the last {minutes:g} minutes")
