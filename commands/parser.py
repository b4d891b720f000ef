"""Parses the text after /rollback: a subcommand, positional arguments and --options.

Every mistake is a CommandError that says what was wrong and what to type instead.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from bot.errors import CommandError

_OPTION = re.compile(r"^--([a-z][a-z-]*)(?:=(.*))?$")


@dataclass
class Spec:
    """What a subcommand accepts: positional names, options with a value, flags."""

    usage: str
    summary: str
    positional: tuple[str, ...] = ()
    optional_positional: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass
class Parsed:
    name: str
    args: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def split(text: str) -> list[str]:
    try:
        return shlex.split(text or "")
    except ValueError as error:
        raise CommandError(
            f"Could not read the command: {error}.", "Check for an unclosed quote."
        ) from None


def closest(word: str, choices) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def parse_arguments(name: str, tokens: list[str], spec: Spec) -> Parsed:
    parsed = Parsed(name)
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        m = _OPTION.match(token)
        if not m:
            if token.startswith("-") and len(token) > 1:
                raise _bad_option(token, spec)
            positional.append(token)
            i += 1
            continue
        opt, value = m.group(1), m.group(2)
        if opt in spec.flags and value is None:
            parsed.flags.add(opt)
        elif opt in spec.options:
            if value is None:
                if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                    raise CommandError(
                        f"`--{opt}` needs a value.", f"Usage: `/rollback {spec.usage}`"
                    )
                value = tokens[i + 1]
                i += 1
            if opt in parsed.options:
                raise CommandError(f"`--{opt}` is given twice.", f"Usage: `/rollback {spec.usage}`")
            parsed.options[opt] = value
        else:
            raise _bad_option(token, spec)
        i += 1
    names = spec.positional + spec.optional_positional
    if len(positional) < len(spec.positional):
        missing = spec.positional[len(positional)]
        raise CommandError(
            f"`/rollback {name}` needs <{missing}>.", f"Usage: `/rollback {spec.usage}`"
        )
    if len(positional) > len(names):
        extra = " ".join(positional[len(names) :])
        raise CommandError(
            f"Unexpected `{extra}` after `/rollback {name}`.", f"Usage: `/rollback {spec.usage}`"
        )
    parsed.args = dict(zip(names, positional, strict=False))
    return parsed


def _bad_option(token: str, spec: Spec) -> CommandError:
    known = [f"--{o}" for o in (*spec.options, *spec.flags)]
    guess = closest(token.split("=")[0], known)
    hint = f"Did you mean `{guess}`? " if guess else ""
    return CommandError(f"Unknown option `{token}`.", f"{hint}Usage: `/rollback {spec.usage}`")
