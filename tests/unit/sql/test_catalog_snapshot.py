"""The catalog check the round-trip, property and corpus tests share compares column
order, and only the order a user can see."""

from __future__ import annotations


def _rebuilt(conn, catalog_snapshot, create: str) -> dict:
    conn.execute("DROP TABLE IF EXISTS snap_t")
    conn.execute(create)
    return catalog_snapshot()


def test_the_same_columns_in_another_order_are_a_different_schema(conn, catalog_snapshot):
    first = _rebuilt(conn, catalog_snapshot, "CREATE TABLE snap_t (a int, b text)")
    swapped = _rebuilt(conn, catalog_snapshot, "CREATE TABLE snap_t (b text, a int)")

    assert first["columns"] != swapped["columns"]
    assert {r[:6] for r in first["columns"]} == {r[:6] for r in swapped["columns"]}


def test_a_dropped_columns_gap_in_attnum_is_not_a_difference(conn, catalog_snapshot):
    conn.execute("DROP TABLE IF EXISTS snap_t")
    conn.execute("CREATE TABLE snap_t (a int, gone int, b text)")
    conn.execute("ALTER TABLE snap_t DROP COLUMN gone")
    after_drop = catalog_snapshot()

    assert _rebuilt(conn, catalog_snapshot, "CREATE TABLE snap_t (a int, b text)") == after_drop


def test_a_column_added_back_comes_last_and_the_check_sees_it(conn, catalog_snapshot):
    before = _rebuilt(conn, catalog_snapshot, "CREATE TABLE snap_t (a int, b text, c int)")
    conn.execute("ALTER TABLE snap_t DROP COLUMN b")
    conn.execute("ALTER TABLE snap_t ADD COLUMN b text")

    assert catalog_snapshot()["columns"] != before["columns"]
