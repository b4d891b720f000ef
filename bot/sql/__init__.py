"""SQL analysis with PostgreSQL's own parser (pglast): statements, what they change in the
schema, whether that change is present in a live database, and how to undo it."""
