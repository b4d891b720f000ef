"""The schema model cache (bot/sql/model_cache.py): the model of a history is built once
and kept under a SHA-256 chain of its scripts. A cached model must be the model a fresh
replay builds, an edited or re-ordered history must not be served another history's model,
and nothing a caller does with the model it gets may change what the next caller gets.

The history is the real one in tests/data/trigger.dev (Apache-2.0, 400 migrations)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pglast.stream import RawStream

from bot.sql import model_cache
from bot.sql.model_cache import clear_cache, schema_before
from bot.sql.model_replay import apply_script_statements
from bot.sql.names import QualifiedName
from bot.sql.parse import parse_sql
from bot.sql.reverse import reverse_script
from bot.sql.schema_model import Index, OtherRelation, SchemaModel, Table
from bot.sql.timeline import migration_timeline
from tests.unit.sql.history_checks import load_directory

EXCERPT = Path(__file__).parents[2] / "data" / "trigger.dev" / "migrations"


@pytest.fixture(scope="module")
def history() -> list[str]:
    return [m.sql for m in load_directory(EXCERPT)]


@pytest.fixture(scope="module")
def expected(history) -> dict:
    """The whole history's model, from a cold replay."""
    return fresh(history)


@pytest.fixture(autouse=True)
def empty_cache():
    clear_cache()
    yield
    clear_cache()


def fresh(scripts: list[str], default_schema: str = "public") -> dict:
    """The model a cold replay builds, described (the cache emptied before and after)."""
    clear_cache()
    try:
        return describe(schema_before(scripts, default_schema))
    finally:
        clear_cache()


# ------------------------------------------------------------------ describing a model
# Identities are new for every replay, so two models are compared by what the identities
# point at: every reference to a table, column, index or type is written as its name.


def describe(model: SchemaModel) -> dict:
    relations = {}
    for name, relation in model.relations.items():
        if isinstance(relation, Table):
            relations[name] = _table(model, relation)
        elif isinstance(relation, Index):
            table = model.table_by_ident(relation.table)
            relations[name] = (
                "index",
                table.name,
                _definition(relation.definition, table),
                _column_names(table, relation.columns),
                _constraint_name(table, relation.constraint),
            )
        else:
            assert isinstance(relation, OtherRelation)
            relations[name] = ("other", relation.kind, _owner(model, relation), _deparsed(relation))
    return {
        "default_schema": model.default_schema,
        "absent_known": model.absent_known,
        "relations": relations,
        "types": {name: (t.kind, t.values, t.values_complete) for name, t in model.types.items()},
        "schemas": model.schemas,
        "extensions": model.extensions,
        "functions": {key: RawStream()(node) for key, node in model.functions.items()},
        "triggers": {
            (_relation_name(model, table), name): RawStream()(node)
            for (table, name), node in model.triggers.items()
        },
        "doubts": _doubts(model),
    }


def _table(model: SchemaModel, table: Table) -> tuple:
    columns = tuple(
        (c.name, _type(model, c.type), repr(c.not_null), repr(c.default)) for c in table.columns
    )
    constraints = {}
    for constraint in table.constraints:
        referenced = model.table_by_ident(constraint.ref_table) if constraint.ref_table else None
        index = model.relation_by_ident(constraint.index) if constraint.index else None
        constraints[constraint.name] = (
            constraint.contype,
            _definition(constraint.definition, table, referenced),
            _column_names(table, constraint.columns),
            referenced.name if referenced else None,
            _column_names(referenced, constraint.ref_columns) if referenced else None,
            index.name if index else None,
        )
    return ("table", table.complete, columns, constraints)


def _type(model: SchemaModel, found) -> object:
    if not hasattr(found, "sql"):
        return repr(found)
    user = model.type_by_ident(found.user) if found.user is not None else None
    return (found.sql, found.builtin, user.name if user else None, found.user_name, found.array)


def _definition(definition, table: Table, referenced: Table | None = None) -> object:
    if definition is None:
        return None
    node = definition.node
    own = {w: _column_name(table, i) for w, i in definition.columns.items()}
    ref = {w: _column_name(referenced, i) for w, i in definition.ref_columns.items()}
    return (RawStream()(node) if node is not None else None, own, ref)


def _deparsed(relation: OtherRelation) -> str | None:
    node = relation.definition.node if relation.definition else None
    return RawStream()(node) if node is not None else None


def _owner(model: SchemaModel, relation: OtherRelation) -> tuple | None:
    if relation.owner is None:
        return None
    table = model.table_by_ident(relation.owner[0])
    return (table.name, _column_name(table, relation.owner[1])) if table else ("?", "?")


def _column_name(table: Table | None, ident: int) -> str | None:
    column = table.column_by_ident(ident) if table else None
    return column.name if column else None


def _column_names(table: Table, idents) -> tuple:
    return tuple(sorted(str(_column_name(table, i)) for i in idents))


def _constraint_name(table: Table, ident: int | None) -> str | None:
    for constraint in table.constraints:
        if constraint.ident == ident:
            return constraint.name
    return None


def _relation_name(model: SchemaModel, ident: int) -> QualifiedName | None:
    found = model.relation_by_ident(ident)
    return found.name if found else None


def _doubts(model: SchemaModel) -> dict:
    doubts = model.doubts
    return {
        "relations": frozenset(doubts.relations),
        "types": frozenset(doubts.types),
        "columns": {(_relation_name(model, t), c) for t, c in doubts.columns},
        "constraints": {(_relation_name(model, t), c) for t, c in doubts.constraints},
        "enum_values": {
            (model.type_by_ident(t).name if model.type_by_ident(t) else None, v)
            for t, v in doubts.enum_values
        },
    }


def replay(model: SchemaModel, sql: str) -> None:
    apply_script_statements(model, (raw.stmt for raw in parse_sql(sql)))


def column_order(model: SchemaModel, table: str) -> list[str]:
    return [c.name for c in model.table(QualifiedName("public", table)).columns]


# ------------------------------------------------------------------ cached and fresh agree


def test_the_description_sees_the_whole_real_history(expected):
    described = expected

    tables = [r for r in described["relations"].values() if r[0] == "table"]
    assert len(tables) > 40
    assert sum(len(t[3]) for t in tables) > 100  # constraints, foreign keys among them


def test_a_cached_model_is_the_model_a_fresh_replay_builds(history, expected):

    first = describe(schema_before(history, "public"))  # builds and caches
    again = describe(schema_before(history, "public"))  # served from the cache

    assert first == expected
    assert again == expected


def test_a_history_that_grew_replays_on_the_cached_prefix_and_agrees(history, expected):
    for length in (len(history) - 1, len(history) // 2, 1):
        clear_cache()
        schema_before(history[:length], "public")
        assert describe(schema_before(history, "public")) == expected


def test_a_shorter_history_is_not_served_the_longer_ones_model(history, expected):
    schema_before(history, "public")

    shorter = describe(schema_before(history[:100], "public"))
    assert shorter == fresh(history[:100])
    assert shorter != expected


# ------------------------------------------------------------------ edited or re-ordered


def test_an_edited_script_is_a_different_history(history):
    schema_before(history, "public")
    edited = list(history)
    edited[50] = edited[50] + '\nCREATE TABLE "edited_here" ("id" integer);'

    got = describe(schema_before(edited, "public"))

    assert QualifiedName("public", "edited_here") in got["relations"]
    assert got == fresh(edited)
    assert (
        QualifiedName("public", "edited_here")
        not in describe(schema_before(history, "public"))["relations"]
    )


def test_an_edit_of_one_character_in_the_first_script_is_a_different_history():
    original = ['CREATE TABLE "t" ("id" integer, "name" text);', 'ALTER TABLE "t" ADD "a" int;']
    edited = ['CREATE TABLE "t" ("id" integer, "nam" text);', original[1]]
    schema_before(original, "public")

    assert column_order(schema_before(edited, "public"), "t") == ["id", "nam", "a"]


def test_re_ordered_scripts_are_a_different_history():
    create = 'CREATE TABLE "t" ("id" integer);'
    add_a, add_b = 'ALTER TABLE "t" ADD "a" int;', 'ALTER TABLE "t" ADD "b" int;'
    schema_before([create, add_a, add_b], "public")

    # The same scripts, the same set of checksums: only the order tells the histories apart,
    # and the order decides the order of the columns.
    assert column_order(schema_before([create, add_b, add_a], "public"), "t") == ["id", "b", "a"]
    assert column_order(schema_before([create, add_a, add_b], "public"), "t") == ["id", "a", "b"]


def test_moving_a_statement_across_a_script_boundary_is_a_different_key():
    one = ['CREATE TABLE "t" ("id" integer);', 'ALTER TABLE "t" ADD "a" int;']
    joined = ['CREATE TABLE "t" ("id" integer);ALTER TABLE "t" ADD "a" int;', ""]

    assert model_cache._chain(one, "public")[-1] != model_cache._chain(joined, "public")[-1]


def test_another_default_schema_is_another_model():
    scripts = ['CREATE TABLE "t" ("id" integer);']
    schema_before(scripts, "public")

    other = schema_before(scripts, "tenant")

    assert other.default_schema == "tenant"
    assert list(other.relations) == [QualifiedName("tenant", "t")]


def test_the_cache_keeps_only_the_most_recently_used_histories():
    histories = [[f'CREATE TABLE "t{n}" ("id" integer);'] for n in range(12)]
    for scripts in histories:
        schema_before(scripts, "public")
    schema_before(histories[5], "public")  # used again: the most recent
    for scripts in histories[:3]:
        schema_before(scripts, "public")

    assert len(model_cache._cache) == model_cache.CACHED_HISTORIES
    kept = model_cache._chain(histories[5], "public")[-1]
    assert kept in model_cache._cache


# ------------------------------------------------------------------ callers cannot change it


def test_replaying_more_on_the_model_a_caller_got_changes_only_that_model(history, expected):
    got = schema_before(history, "public")
    table = next(t for t in got.tables() if len(t.columns) > 2 and t.constraints)
    column = table.columns[1].name

    replay(
        got,
        f'ALTER TABLE {table.name.sql()} RENAME COLUMN "{column}" TO "renamed";'
        f'ALTER TABLE {table.name.sql()} ALTER COLUMN "renamed" SET NOT NULL;'
        f'ALTER TABLE {table.name.sql()} DROP CONSTRAINT "{table.constraints[0].name}";'
        f"DROP TABLE {table.name.sql()} CASCADE;"
        'CREATE TABLE "brand_new" ("id" integer PRIMARY KEY);'
        'ALTER TABLE "not_in_the_history" ADD "x" int;'  # unknown: a doubt
        "DO $$ BEGIN EXECUTE 'unreadable'; END $$;",
    )
    assert describe(got) != expected

    assert describe(schema_before(history, "public")) == expected
    assert describe(schema_before(history + ["SELECT 1;"], "public")) == fresh(
        history + ["SELECT 1;"]
    )


def test_changing_the_models_own_fields_and_doubts_leaves_the_cache_alone(history, expected):
    got = schema_before(history, "public")

    got.doubts.relations.add(QualifiedName("public", "User"))
    got.doubts.columns.add((next(got.tables()).ident, "id"))
    got.absent_known = False
    got.schemas = frozenset()
    got.relations = got.relations.delete(next(iter(got.relations)))

    assert describe(schema_before(history, "public")) == expected


def test_the_definitions_a_caller_gets_cannot_be_rewritten(history, expected):
    got = schema_before(history, "public")
    definitions = [
        c.definition for t in got.tables() for c in t.constraints if c.definition is not None
    ] + [
        r.definition
        for r in got.relations.values()
        if isinstance(r, Index) and r.definition is not None
    ]
    assert len({type(d) for d in definitions}) == 2  # Definition and BuiltDefinition
    definitions = [d for d in definitions if d.columns]

    refused = 0
    for definition in definitions:
        written = next(iter(definition.columns))
        for mapping in (definition.columns, definition.ref_columns):
            try:
                mapping[written] = -1
            except TypeError:
                refused += 1
        for field in ("columns", "ref_columns"):
            try:
                setattr(definition, field, {written: -1})
            except AttributeError:
                refused += 1

    assert describe(schema_before(history, "public")) == expected
    assert refused == 4 * len(definitions)


def test_the_reverse_and_the_timeline_of_the_next_migration_leave_the_cache_alone(history):
    earlier, last = history[:-1], history[-1]
    expected = fresh(earlier)
    # Every state of a long migration, each definition printed under renamed columns, and
    # the reverse: what the bot does with the model it gets.
    busy = next(sql for sql in reversed(earlier) if sql.count("RENAME") and sql.count(";") > 5)
    for sql in (last, busy):
        migration_timeline(sql, default_schema="public", earlier_sql=earlier)
        reverse_script(sql, default_schema="public", earlier_sql=earlier)

    assert describe(schema_before(earlier, "public")) == expected
