-- The role rollback-bot connects as, on each application database. No superuser, no
-- CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS: what it may do is what the role that owns the
-- application's schema may do, and nothing of the rest of the server.
--
-- Why membership in the owner role: options 1 (undo what a failed migration applied), 2
-- (apply a reverse migration) and 4 (manual SQL, with its backup tables) run DDL on the
-- application's tables, which PostgreSQL allows only to their owner and the owner's members;
-- all of them read and write _prisma_migrations, take Prisma's advisory lock
-- (pg_advisory_lock, open to every role) and read pg_catalog. Option 3's database side runs
-- the configured verification queries on the current and the restored database.
--
-- Why the sessions SET ROLE to the owner (the ALTER ROLE ... SET role below): what the bot
-- creates (a table a reverse migration re-creates, option 4's backup tables, the history
-- table itself) is then owned by the same role as what `prisma migrate deploy` created, so
-- the application keeps its grants and the next deploy can alter it. The bot's own login
-- can be revoked without touching any object.
--
-- Run as a role that may create roles (an RDS master user, or the owner with CREATEROLE),
-- once per database, with psql:
--   psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v bot_role=rollback_bot -v app_owner=app \
--        -v database=app_production -v password="$ROLLBACK_BOT_DB_PASSWORD" \
--        -f docs/database-privileges.sql
-- app_owner is the role that owns the application's schema and tables (the one Prisma's
-- migrations ran as). Put the resulting URL in the bot's config or secret:
--   postgresql://rollback_bot:PASSWORD@HOST:5432/app_production
-- (On RDS, a PITR restore copies roles and grants, so the restored database already has
-- this role.) `rollback-bot doctor` checks the result.

CREATE ROLE :"bot_role" LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
    CONNECTION LIMIT 20;
GRANT CONNECT ON DATABASE :"database" TO :"bot_role";
GRANT :"app_owner" TO :"bot_role";
ALTER ROLE :"bot_role" IN DATABASE :"database" SET role = :'app_owner';
