"""Prisma Migrate's history on PostgreSQL, read and written exactly as Prisma does.

Sources: prisma-engines ``schema-engine/`` (commands apply_migrations, mark_migration_applied,
mark_migration_rolled_back, diagnose_migration_history; the SQL migration persistence) and the
``prisma migrate status`` command of the prisma CLI, 6.x; summarised in
docs/reference/prisma-migrate.md.
"""
