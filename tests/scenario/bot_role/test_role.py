"""The role itself: not a superuser, no other power, acting as the application's owner."""

from __future__ import annotations

import psycopg

from tests.rig.postgres import database_name
from tests.scenario.bot_role.conftest import owner_and_bot_roles


def test_the_role_has_no_power_beyond_the_owners_and_acts_as_it(pg_url):
    owner, bot_role = owner_and_bot_roles(database_name(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT session_user, current_user").fetchone() == (bot_role, owner)
        attributes = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = session_user"
        ).fetchone()
        assert attributes == (False, False, False, False, False)
        conn.execute("CREATE TABLE made_by_the_bot (id int)")
        made_by = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_the_bot'"
        ).fetchone()
        assert made_by == (owner,)  # owned like what Prisma's migrations created
        # Nothing of the server beyond the database: no other role's power, no files.
        for statement in (
            "CREATE DATABASE elsewhere",
            "CREATE ROLE someone",
            "COPY made_by_the_bot FROM '/etc/passwd'",
        ):
            try:
                conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                continue
            raise AssertionError(f"{statement} was allowed")
