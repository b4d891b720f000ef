"""The names PostgreSQL chooses for what a statement leaves unnamed.

``CREATE TABLE t (id SERIAL PRIMARY KEY, email TEXT UNIQUE)`` creates the sequence
``t_id_seq``, the constraint and index ``t_pkey`` and ``t_email_key``. PostgreSQL builds
them with makeObjectName() (src/backend/commands/indexcmds.c): ``<name1>_<name2>_<label>``
cut to NAMEDATALEN - 1 = 63 bytes by shortening the longer of the two names first; when the
name is taken it tries ``<label>1``, ``<label>2``... The model uses the name only when no
object it knows holds it already; otherwise the name is left unknown.
"""

from __future__ import annotations

NAME_MAX_BYTES = 63  # NAMEDATALEN - 1


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    first, second = name1.encode(), (name2 or "").encode()
    overhead = (1 if name2 is not None else 0) + len(label) + 1
    room = NAME_MAX_BYTES - overhead
    n1, n2 = len(first), len(second)
    while n1 + n2 > room:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [first[:n1].decode(errors="ignore")]
    if name2 is not None:
        parts.append(second[:n2].decode(errors="ignore"))
    parts.append(label)
    return "_".join(parts)


def column_names_part(columns: list[str]) -> str:
    """The middle part for several columns: joined with "_" (ChooseIndexNameAddition)."""
    joined = "_".join(columns)
    return joined.encode()[:NAME_MAX_BYTES].decode(errors="ignore")
