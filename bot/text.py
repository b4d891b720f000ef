"""Text a person typed, checked the same way whichever front end it came through, and text
made visible for people who must read exactly what it holds.

Bidirectional controls and zero-width characters can make what a reviewer reads differ from
what runs ("Trojan Source", CVE-2021-42574): ``SELECT 1 /* U+202E ... */`` can display a
DELETE as a comment. They are refused in what a person types (SQL, reasons) and shown as
``[U+202E]`` wherever other text (a database's error, a value) is displayed.
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UserError

REASON_MAX = 500  # the reason inputs' max_length; rechecked here, on the server

# Unicode's bidirectional formatting characters, and the zero-width and invisible ones a
# text can hide in (General Category Cf, plus the line/paragraph separators).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u2028\u2029"
_INVISIBLE = re.compile(f"[{_BIDI}{_ZERO_WIDTH}]")


def invisible_characters(text: str) -> list[str]:
    """Each hidden character found, as ``U+202E RIGHT-TO-LEFT OVERRIDE (line 3)``."""
    found = []
    for match in _INVISIBLE.finditer(text):
        char = match.group()
        line = text.count("\n", 0, match.start()) + 1
        name = unicodedata.name(char, "FORMAT CHARACTER")
        found.append(f"U+{ord(char):04X} {name} (line {line})")
    return found


def refuse_invisible(text: str, what: str) -> None:
    """A UserError naming the first hidden characters, when ``text`` holds any."""
    found = invisible_characters(text)
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise UserError(
            f"The {what} contains invisible or text-direction characters: {shown}. They can"
            " make what the approver reads differ from what runs.",
            f"Retype the {what} without them (paste it through a plain-text editor).",
            code="invisible_characters",
        )


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,250 rows`` (docs/messages.md rule 4: no bracketed plural);
    ``many`` for a word whose plural is not word + s (``1 statement depends`` is the
    caller's grammar, not this function's)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def visible(text: str) -> str:
    """``text`` with every hidden character shown as ``[U+XXXX]``."""
    return _INVISIBLE.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def one_line_reason(reason: str) -> str:
    """A reason as the incident log keeps it: one line (a newline could add lines that
    look like the bot's), at most REASON_MAX characters, no hidden characters."""
    refuse_invisible(reason, "reason")
    line = " ".join(reason.split())
    if not line:
        raise UserError("Give a reason: it goes into the incident log.", code="reason")
    if len(line) > REASON_MAX:
        raise UserError(
            f"The reason is {len(line)} characters long; at most {REASON_MAX} are kept.",
            "Shorten it: the details belong in the incident channel's thread.",
            code="reason",
        )
    return line
