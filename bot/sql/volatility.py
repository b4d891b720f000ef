"""Every function a typed statement calls, resolved against the live catalog by volatility.

PostgreSQL marks each function immutable, stable or volatile (pg_proc.provolatile). Immutable
and stable functions cannot change the database (the server runs them read-only); volatile
ones can, and some reach outside it: pg_terminate_backend, lo_export, pg_read_file,
set_config, pg_advisory_lock, dblink. So a name is accepted only if every function it can
resolve to (every overload, in the schema given or on the search_path) is immutable or
stable, or is on the short reviewed list below. Operators and casts are functions too
(pg_operator.oprcode, pg_cast.castfunc, a type's input function): none of the built-in ones
is volatile, so this only ever refuses user-defined ones.
"""

from __future__ import annotations

from importlib.resources import files

import psycopg

from bot.sql.allowlist import BY_HAND, Calls, Name, Refusal

# Volatile functions that change nothing and reach nothing outside the statement: they only
# return a different value each time. (owner: "pg_catalog" or the extension that owns them.)
HARMLESS_VOLATILE: dict[str, frozenset[str]] = {
    "pg_catalog": frozenset(
        {
            "random",  # a number; refused where it would pick rows (WHERE, FROM, USING)
            "random_normal",
            "gen_random_uuid",
            "clock_timestamp",  # the time; now() and statement_timestamp() are stable
            "timeofday",
        }
    ),
    "uuid-ossp": frozenset({"uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4"}),
    "pgcrypto": frozenset({"gen_random_uuid", "gen_random_bytes"}),
}

_VOLATILE_BUILTINS = frozenset(
    line.strip()
    for line in files("bot.sql").joinpath("volatile_builtins.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)

# Volatile functions of extensions common on RDS that reach outside the database (another
# connection, S3, Lambda, files), refused at submission too, in any schema (the live
# catalog check before running refuses every volatile function anyway).
_KNOWN_EXTENSION_VOLATILE = frozenset(
    {
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_open",
        "dblink_send_query",
        "query_export_to_s3",
        "table_import_from_s3",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
    }
)

# Why a volatile function is refused, for the ones people reach for (by name prefix).
_WHY = (
    ("set_config", "it changes a setting the bot sets (timeouts, search_path, lexing)"),
    ("pg_advisory", "advisory locks outlive the statement and block other sessions"),
    ("pg_try_advisory", "advisory locks outlive the statement and block other sessions"),
    ("lo_", "large objects read and write files on the database server"),
    ("pg_read", "it reads files on the database server"),
    ("pg_ls_", "it reads the database server's file system"),
    ("pg_stat_file", "it reads the database server's file system"),
    ("pg_terminate_backend", "it kills other sessions, even in a dry run that is rolled back"),
    ("pg_cancel_backend", "it cancels other sessions' queries, even in a dry run"),
    ("pg_sleep", "it holds the statement's locks for as long as it sleeps"),
    ("nextval", "sequence changes are never rolled back"),
    ("setval", "sequence changes are never rolled back"),
    ("dblink", "it runs SQL on another connection, outside the bot's transaction"),
    ("query_export_to_s3", "it sends data out of the database"),
    ("table_import_from_s3", "it reads data from outside the database"),
    ("pg_file_", "it writes files on the database server"),
    ("pg_notify", "it reaches other sessions"),
)


def check_calls(conn: psycopg.Connection, found: Calls) -> list[Refusal]:
    """Refusals for the functions, operators and casts in ``found``, from the catalog the
    connection sees (its search_path, which the SQL cannot change)."""
    refusals = _function_refusals(conn, found)
    refusals += _volatile_behind(
        conn,
        found.operators,
        _OPERATORS,
        "the operator {} runs a volatile function",
        "use a built-in operator, or " + BY_HAND,
    )
    refusals += _volatile_behind(
        conn,
        found.types,
        _CASTS,
        "a cast to {} runs a volatile function",
        "cast to a built-in type, or " + BY_HAND,
    )
    return refusals


def _function_refusals(conn: psycopg.Connection, found: Calls) -> list[Refusal]:
    resolved = _resolve(conn, sorted(found.functions, key=_key), _FUNCTIONS)
    refusals = []
    for name in sorted(found.functions, key=_key):
        candidates = resolved.get(name, [])
        if not candidates:
            refusals.append(
                Refusal(
                    f"{_display(name)}() is not a function this database knows (looked up in"
                    " the schemas on the search_path)",
                    "check the name, or qualify it with its schema",
                )
            )
            continue
        volatile = [owner for volatility, owner in candidates if volatility == "v"]
        harmful = any(not _harmless(owner, name[1]) for owner in volatile)
        refusal = _judge(name, bool(volatile), harmful, name in found.in_predicates)
        if refusal:
            refusals.append(refusal)
    return refusals


def builtin_refusals(found: Calls) -> list[Refusal]:
    """The same judgement from the list of PostgreSQL's own volatile functions, without a
    database: what can be refused the moment the SQL is submitted."""
    refusals = []
    for name in sorted(found.functions, key=_key):
        builtin = name[0] in (None, "pg_catalog") and name[1] in _VOLATILE_BUILTINS
        if not builtin and name[1] not in _KNOWN_EXTENSION_VOLATILE:
            continue
        harmful = not _harmless("pg_catalog", name[1])
        refusal = _judge(name, True, harmful, name in found.in_predicates)
        if refusal:
            refusals.append(refusal)
    return refusals


def _judge(name: Name, volatile: bool, harmful: bool, in_predicate: bool) -> Refusal | None:
    if harmful:
        return Refusal(f"{_display(name)}() is refused: {_why(name[1])}", _instead(name))
    if volatile and in_predicate:
        return Refusal(
            f"{_display(name)}() returns a different value each time it is called, so in the"
            " WHERE/FROM/USING of an UPDATE or DELETE it picks other rows in the real run than"
            " in the dry run the approver saw (and than the backup holds)",
            "select the rows by their values",
        )
    return None


def _why(name: str) -> str:
    for prefix, why in _WHY:
        if name.startswith(prefix):
            return why
    return (
        "it is volatile: it can change the database or reach outside it (files, other"
        " sessions, locks), even in a dry run that is rolled back"
    )


def _instead(name: Name) -> str:
    if name[1] == "set_config":
        return "remove it; the bot sets the session itself"
    if name[1] in ("nextval", "setval"):
        return "let the column's DEFAULT draw the value, or run setval by hand"
    return "use functions that only read (stable or immutable); for this one, " + BY_HAND


def _harmless(owner: str | None, name: str) -> bool:
    return name in HARMLESS_VOLATILE.get(owner or "", frozenset())


def _volatile_behind(
    conn: psycopg.Connection, names: set[Name], query: str, why: str, instead: str
) -> list[Refusal]:
    """Operators and casts: refused when a function behind them is volatile."""
    resolved = _resolve(conn, sorted(names, key=_key), query)
    return [
        Refusal(why.format(_display(name)), instead)
        for name in sorted(names, key=_key)
        if any(v == "v" for v, _ in resolved.get(name, []))
    ]


# Each query takes the names as two arrays (schema or NULL, name) and returns, per name,
# the volatility of every function it can resolve to and the function's owner
# (pg_catalog, or the extension it belongs to).
_OWNER = (
    "coalesce((SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid"
    " WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'"
    " LIMIT 1), CASE WHEN n.nspname = 'pg_catalog' THEN 'pg_catalog' END)"
)
_VISIBLE = (
    "((q.schema IS NOT NULL AND n.nspname = q.schema)"
    " OR (q.schema IS NULL AND n.nspname = ANY (current_schemas(true))))"
)
_FUNCTIONS = (
    f"SELECT q.schema, q.name, p.provolatile, {_OWNER}"
    " FROM unnest(%s::text[], %s::text[]) AS q(schema, name)"
    " JOIN pg_proc p ON p.proname = q.name JOIN pg_namespace n ON n.oid = p.pronamespace"
    f" WHERE {_VISIBLE}"
)
_OPERATORS = (
    f"SELECT q.schema, q.name, p.provolatile, {_OWNER}"
    " FROM unnest(%s::text[], %s::text[]) AS q(schema, name)"
    " JOIN pg_operator o ON o.oprname = q.name JOIN pg_namespace n ON n.oid = o.oprnamespace"
    f" JOIN pg_proc p ON p.oid = o.oprcode WHERE {_VISIBLE}"
)
_CASTS = (
    f"SELECT q.schema, q.name, p.provolatile, {_OWNER}"
    " FROM unnest(%s::text[], %s::text[]) AS q(schema, name)"
    " JOIN pg_type t ON t.typname = q.name JOIN pg_namespace n ON n.oid = t.typnamespace"
    " JOIN pg_proc p ON p.oid = t.typinput"
    " OR p.oid IN (SELECT c.castfunc FROM pg_cast c WHERE c.casttarget = t.oid)"
    f" WHERE {_VISIBLE}"
)


def _resolve(
    conn: psycopg.Connection, names: list[Name], query: str
) -> dict[Name, list[tuple[str, str | None]]]:
    if not names:
        return {}
    schemas = [schema for schema, _ in names]
    plain = [name for _, name in names]
    out: dict[Name, list[tuple[str, str | None]]] = {}
    for schema, name, volatility, owner in conn.execute(query, (schemas, plain)):
        out.setdefault((schema, name), []).append((volatility, owner))
    return out


def _key(name: Name) -> tuple[str, str]:
    return (name[0] or "", name[1])


def _display(name: Name) -> str:
    return f"{name[0]}.{name[1]}" if name[0] else name[1]
