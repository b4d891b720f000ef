"""A schema snapshot from pg_catalog, to compare a database before and after."""

from __future__ import annotations

import psycopg

# Everything a schema change can touch, as text, for the user's schemas only.
SNAPSHOT_QUERIES = {
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
    " AND nspname <> 'information_schema' ORDER BY 1",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
    "relations": "SELECT n.nspname, c.relname, c.relkind FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
    " ORDER BY 1, 2",
    # The last field is the column's place among the table's live columns (what SELECT *
    # and psql's \d show), not attnum: a dropped column leaves a gap in attnum that a fresh
    # table does not have, but the order of the columns that remain is compared.
    "columns": "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
    " a.attnotnull, pg_get_expr(d.adbin, d.adrelid),"
    " row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) FROM pg_attribute a"
    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    " WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1, 2, 3",
    "indexes": "SELECT schemaname, indexname, indexdef FROM pg_indexes"
    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "constraints": "SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid)"
    " FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3",
    "views": "SELECT schemaname, viewname, definition FROM pg_views"
    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    "functions": "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),"
    " pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p')"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
    " ORDER BY 1, 2, 3",
    "triggers": "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
    " JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal ORDER BY 1, 2",
    "types": "SELECT n.nspname, t.typname, t.typtype, array(SELECT e.enumlabel FROM pg_enum e"
    " WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)::text FROM pg_type t"
    " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'c', 'd')"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
}


def catalog_snapshot_of(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Schemas, extensions, relations, columns, indexes, constraints, views, functions,
    triggers and types as rows."""
    return {name: conn.execute(query).fetchall() for name, query in SNAPSHOT_QUERIES.items()}
