"""Acknowledgements written in a migration file: a comment line
``-- rollback-bot: allow data-loss "reason"`` (or ``allow irreversible "reason"``) tells
`rollback-bot check` that the team knows what the migration destroys and why, so CI
passes. The reason is required: it is what a reviewer reads later.

Read from the comments PostgreSQL's own scanner finds (pglast.parser.scan), so text inside
a string literal or a dollar-quoted body is never taken for an acknowledgement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pglast.parser import ParseError, scan

PREFIX = "rollback-bot:"
_DIRECTIVE = re.compile(r'^allow\s+(?P<what>[a-z-]+)\s+"(?P<reason>[^"]*)"\s*$')


class Acknowledged(StrEnum):
    DATA_LOSS = "data-loss"
    IRREVERSIBLE = "irreversible"


@dataclass(frozen=True)
class Acknowledgement:
    what: Acknowledged
    reason: str
    line: int

    def to_dict(self) -> dict:
        return {"what": str(self.what), "reason": self.reason, "line": self.line}


@dataclass(frozen=True)
class Acknowledgements:
    found: tuple[Acknowledgement, ...] = ()
    problems: tuple[str, ...] = ()  # directives that do not read right, with their line

    def covers(self, what: Acknowledged) -> bool:
        # Accepting that nothing can undo a migration accepts that it loses data too.
        wanted = {what, Acknowledged.IRREVERSIBLE}
        return any(a.what in wanted for a in self.found)


def acknowledgements(script: str) -> Acknowledgements:
    found, problems = [], []
    for line, text in _comments(script):
        body = text.strip()
        if not body.startswith(PREFIX):
            continue
        directive = body.removeprefix(PREFIX).strip()
        match = _DIRECTIVE.match(directive)
        kinds = {k.value: k for k in Acknowledged}
        if match is None or match["what"] not in kinds or not match["reason"].strip():
            problems.append(
                f'line {line}: `{body}` is not `{PREFIX} allow data-loss "reason"` or'
                f' `{PREFIX} allow irreversible "reason"` (a reason in double quotes)'
            )
            continue
        found.append(Acknowledgement(kinds[match["what"]], match["reason"].strip(), line))
    return Acknowledgements(tuple(found), tuple(problems))


def _comments(script: str) -> list[tuple[int, str]]:
    """(1-based line, text) of every ``--`` comment PostgreSQL's scanner finds."""
    try:
        tokens = scan(script)
    except ParseError:
        return []  # the review reports the parse error itself
    comments = []
    for token in tokens:
        if token.name != "SQL_COMMENT":
            continue
        # pglast reports offsets in characters (as for statements: bot.sql.statements).
        text = script[token.start : token.end + 1]
        line = script.count("\n", 0, token.start) + 1
        comments.append((line, text.removeprefix("--")))
    return comments
