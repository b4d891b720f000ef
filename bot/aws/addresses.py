"""Host names as the network resolves them: what PITR's cleanup compares to decide whether
the old instance is still the one applications reach.

A URL may name the database by its RDS endpoint, by an IP address, by a CNAME or a Route 53
alias of the endpoint, or by an RDS Proxy: comparing names (or looking for the endpoint as
a substring of the URL) misses all but the first. Both sides are resolved to addresses and
the addresses are compared.

The resolver is ``socket.getaddrinfo`` unless ``[pitr] resolver`` names another function
(``module:function``, called with the host name and port, returning addresses): the
sandbox and the tests resolve moto's endpoint names on loopback with it, never real DNS.
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
from collections.abc import Callable

from bot.errors import ConfigError

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [info[4][0] for info in infos]


def load_resolver(spec: str | None) -> Resolver:
    if not spec:
        return system_resolver
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"[pitr] resolver {spec!r} cannot be loaded: {error}") from None


class Unresolvable(Exception):
    """A host name that does not resolve: whether it is the old instance cannot be told."""


def addresses(host: str, port: int, resolver: Resolver) -> frozenset[str]:
    """The addresses ``host`` stands for; an IP address stands for itself."""
    try:
        return frozenset({str(ipaddress.ip_address(host.strip("[]")))})
    except ValueError:
        pass
    try:
        found = frozenset(str(ipaddress.ip_address(a.split("%")[0])) for a in resolver(host, port))
    except (OSError, ValueError) as error:  # socket.gaierror is an OSError
        raise Unresolvable(f"`{host}` does not resolve ({error})") from None
    if not found:
        raise Unresolvable(f"`{host}` resolves to no address")
    return found
