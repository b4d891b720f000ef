"""The reverse generator over a corpus of migrations in the shapes Prisma generates for
PostgreSQL (its migration.sql style: quoted names, TEXT ids, ``CONSTRAINT "X_pkey" PRIMARY
KEY``, ``CREATE UNIQUE INDEX "User_email_key"``, ``ADD CONSTRAINT ... FOREIGN KEY ... ON
DELETE RESTRICT ON UPDATE CASCADE``, enums, ``SET DATA TYPE``, renames, drops).

Each case: the migration, its expected reverse (last change first) with each step's class
and backup table; then a round trip: apply the migration, apply the generated reverse
migration, and the catalog is as before (backup tables aside); and the data-losing path
keeps every value in its backup table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pglast import parse_sql

from bot.sql.impact import LiveImpact
from bot.sql.names import QualifiedName
from bot.sql.reverse import StepClass, backup_name, reverse_script
from bot.sql.statements import split_statements

R, D, IRR = StepClass.REVERSIBLE, StepClass.DATA_LOSING, StepClass.IRREVERSIBLE
STAMP = "20261126"

BASE = """CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "content" TEXT,
    "published" BOOLEAN NOT NULL DEFAULT false,
    "authorId" TEXT NOT NULL,
    "viewCount" INTEGER NOT NULL DEFAULT 0,
    "tags" TEXT[],
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Comment" (
    "id" SERIAL NOT NULL,
    "postId" INTEGER NOT NULL,
    "text" TEXT NOT NULL,
    CONSTRAINT "Comment_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Tag" ("name" TEXT NOT NULL);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE INDEX "Post_authorId_idx" ON "Post"("authorId");
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")
    REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"""

USERS = (
    'INSERT INTO "User" ("id", "email", "name")'
    " VALUES ('u1', 'a@x', 'Ann'), ('u2', 'b@x', NULL), ('u3', 'c@x', 'Cy');"
)


@dataclass(frozen=True)
class Case:
    id: str
    forward: str  # the migration
    setup: str = ""  # an earlier migration, after BASE
    writes: str = ""  # what the application wrote after the migration ran
    # (class, main reverse statement or None, backup table or None), last change first
    reverse: tuple[tuple, ...] = ()
    residue: bool = False  # the reverse leaves something on purpose (an enum value)


CORPUS = [
    Case(
        "create_table_text_id",
        'CREATE TABLE "Category" (\n    "id" TEXT NOT NULL,\n    "name" '
        'TEXT NOT NULL,\n    CONSTRAINT "Category_pkey" PRIMARY KEY ("id")\n);',
        reverse=((R, 'DROP TABLE IF EXISTS "public"."Category"', "Category_backup_20261126"),),
    ),
    Case(
        "create_table_serial_defaults",
        'CREATE TABLE "Session" (\n    "id" SERIAL NOT NULL,\n    "token" '
        'TEXT NOT NULL,\n    "expiresAt" TIMESTAMP(3) NOT NULL,\n    '
        '"createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n '
        '   "updatedAt" TIMESTAMP(3) NOT NULL,\n    CONSTRAINT "Session_pkey" '
        'PRIMARY KEY ("id")\n);',
        reverse=((R, 'DROP TABLE IF EXISTS "public"."Session"', "Session_backup_20261126"),),
    ),
    Case(
        "create_table_enum_column",
        'CREATE TABLE "Member" (\n    "id" TEXT NOT NULL,\n    "role" '
        '"Role" NOT NULL DEFAULT \'USER\',\n    CONSTRAINT "Member_pkey" '
        'PRIMARY KEY ("id")\n);',
        reverse=((R, 'DROP TABLE IF EXISTS "public"."Member"', "Member_backup_20261126"),),
    ),
    Case(
        "create_table_implicit_m2m",
        'CREATE TABLE "_CategoryToPost" (\n    "A" TEXT NOT NULL,\n  '
        '  "B" INTEGER NOT NULL,\n    CONSTRAINT "_CategoryToPost_AB_pkey" '
        'PRIMARY KEY ("A","B")\n);',
        reverse=(
            (
                R,
                'DROP TABLE IF EXISTS "public"."_CategoryToPost"',
                "_CategoryToPost_backup_20261126",
            ),
        ),
    ),
    Case(
        "create_table_scalar_types",
        'CREATE TABLE "Invoice" (\n    "id" BIGSERIAL NOT NULL,\n    '
        '"amount" DECIMAL(65,30) NOT NULL,\n    "rate" DOUBLE PRECISION '
        'NOT NULL,\n    "payload" JSONB,\n    "pdf" BYTEA,\n    "count" '
        'BIGINT NOT NULL DEFAULT 0,\n    CONSTRAINT "Invoice_pkey" PRIMARY '
        'KEY ("id")\n);',
        reverse=((R, 'DROP TABLE IF EXISTS "public"."Invoice"', "Invoice_backup_20261126"),),
    ),
    Case(
        "create_table_arrays_uuid",
        'CREATE TABLE "Event" (\n    "id" UUID NOT NULL,\n    "labels" '
        'TEXT[] DEFAULT ARRAY[]::TEXT[],\n    "scores" INTEGER[],\n  '
        '  CONSTRAINT "Event_pkey" PRIMARY KEY ("id")\n);',
        reverse=((R, 'DROP TABLE IF EXISTS "public"."Event"', "Event_backup_20261126"),),
    ),
    Case(
        "create_table_other_schema",
        'CREATE TABLE "audit"."Log" (\n    "id" SERIAL NOT NULL,\n   '
        ' "at" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n  '
        '  CONSTRAINT "Log_pkey" PRIMARY KEY ("id")\n);',
        setup='CREATE SCHEMA "audit";',
        reverse=((R, 'DROP TABLE IF EXISTS "audit"."Log"', "Log_backup_20261126"),),
    ),
    Case(
        "create_unique_index",
        'CREATE UNIQUE INDEX "User_name_key" ON "User"("name");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."User_name_key"'),),
    ),
    Case(
        "create_index",
        'CREATE INDEX "Post_title_idx" ON "Post"("title");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."Post_title_idx"'),),
    ),
    Case(
        "create_composite_index",
        'CREATE INDEX "Post_authorId_published_idx" ON "Post"("authorId", "published");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."Post_authorId_published_idx"'),),
    ),
    Case(
        "create_index_desc",
        'CREATE INDEX "Post_viewCount_idx" ON "Post"("viewCount" DESC);',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."Post_viewCount_idx"'),),
    ),
    Case(
        "create_index_hash",
        'CREATE INDEX "User_name_idx" ON "User" USING HASH ("name");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."User_name_idx"'),),
    ),
    Case(
        "create_unique_composite_index",
        'CREATE UNIQUE INDEX "Comment_postId_text_key" ON "Comment"("postId", "text");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."Comment_postId_text_key"'),),
    ),
    Case(
        "create_index_gin",
        'CREATE INDEX "Post_tags_idx" ON "Post" USING GIN ("tags");',
        reverse=((R, 'DROP INDEX IF EXISTS "public"."Post_tags_idx"'),),
    ),
    Case(
        "create_index_other_schema",
        'CREATE INDEX "Log_at_idx" ON "audit"."Log"("at");',
        setup='CREATE SCHEMA "audit"; CREATE TABLE "audit"."Log" ("id" SERIAL '
        'NOT NULL, "at" TIMESTAMPTZ(6) NOT NULL);',
        reverse=((R, 'DROP INDEX IF EXISTS "audit"."Log_at_idx"'),),
    ),
    Case(
        "add_column_nullable",
        'ALTER TABLE "User" ADD COLUMN "bio" TEXT;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "bio"',
                "User_bio_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_not_null_default",
        'ALTER TABLE "User" ADD COLUMN "active" BOOLEAN NOT NULL DEFAULT true;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "active"',
                "User_active_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_enum",
        'ALTER TABLE "Post" ADD COLUMN "audience" "Role" NOT NULL DEFAULT \'USER\';',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" DROP COLUMN IF EXISTS "audience"',
                "Post_audience_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_timestamp",
        'ALTER TABLE "Post" ADD COLUMN "publishedAt" TIMESTAMP(3);',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" DROP COLUMN IF EXISTS "publishedAt"',
                "Post_publishedAt_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_decimal",
        'ALTER TABLE "Post" ADD COLUMN "price" DECIMAL(10,2);',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" DROP COLUMN IF EXISTS "price"',
                "Post_price_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_jsonb",
        'ALTER TABLE "User" ADD COLUMN "settings" JSONB;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "settings"',
                "User_settings_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_array",
        'ALTER TABLE "User" ADD COLUMN "aliases" TEXT[];',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "aliases"',
                "User_aliases_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_int_default",
        'ALTER TABLE "Comment" ADD COLUMN "likes" INTEGER NOT NULL DEFAULT 0;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Comment" DROP COLUMN IF EXISTS "likes"',
                "Comment_likes_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_column_uuid",
        'ALTER TABLE "Comment" ADD COLUMN "externalId" UUID;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Comment" DROP COLUMN IF EXISTS "externalId"',
                "Comment_externalId_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_two_columns",
        'ALTER TABLE "User" ADD COLUMN     "age" INTEGER,\nADD COLUMN     "city" TEXT;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "city"',
                "User_city_backup_20261126",
            ),
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "age"',
                "User_age_backup_20261126",
            ),
        ),
    ),
    Case(
        "add_foreign_key_cascade",
        'ALTER TABLE "Comment" ADD CONSTRAINT "Comment_postId_fkey" FOREIGN '
        'KEY ("postId") REFERENCES "Post"("id") ON DELETE CASCADE ON '
        "UPDATE CASCADE;",
        reverse=(
            (R, 'ALTER TABLE "public"."Comment" DROP CONSTRAINT IF EXISTS "Comment_postId_fkey"'),
        ),
    ),
    Case(
        "add_foreign_key_set_null",
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_editorId_fkey" FOREIGN '
        'KEY ("editorId") REFERENCES "User"("id") ON DELETE SET NULL '
        "ON UPDATE CASCADE;",
        setup='ALTER TABLE "Post" ADD COLUMN "editorId" TEXT;',
        reverse=(
            (R, 'ALTER TABLE "public"."Post" DROP CONSTRAINT IF EXISTS "Post_editorId_fkey"'),
        ),
    ),
    Case(
        "add_unique_constraint",
        'ALTER TABLE "Tag" ADD CONSTRAINT "Tag_name_key" UNIQUE ("name");',
        reverse=((R, 'ALTER TABLE "public"."Tag" DROP CONSTRAINT IF EXISTS "Tag_name_key"'),),
    ),
    Case(
        "add_check_constraint",
        'ALTER TABLE "Post" ADD CONSTRAINT "Post_viewCount_check" CHECK ("viewCount" >= 0);',
        reverse=(
            (R, 'ALTER TABLE "public"."Post" DROP CONSTRAINT IF EXISTS "Post_viewCount_check"'),
        ),
    ),
    Case(
        "add_primary_key",
        'ALTER TABLE "Tag" ADD CONSTRAINT "Tag_pkey" PRIMARY KEY ("name");',
        reverse=((R, 'ALTER TABLE "public"."Tag" DROP CONSTRAINT IF EXISTS "Tag_pkey"'),),
    ),
    Case(
        "rename_column",
        'ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";',
        reverse=((R, 'ALTER TABLE "public"."User" RENAME COLUMN "fullName" TO "name"'),),
    ),
    Case(
        "rename_table",
        'ALTER TABLE "Comment" RENAME TO "Reply";',
        reverse=((R, 'ALTER TABLE "public"."Reply" RENAME TO "Comment"'),),
    ),
    Case(
        "rename_index",
        'ALTER INDEX "Post_authorId_idx" RENAME TO "Post_author_idx";',
        reverse=((R, 'ALTER INDEX "public"."Post_author_idx" RENAME TO "Post_authorId_idx"'),),
    ),
    Case(
        "rename_constraint",
        'ALTER TABLE "Post" RENAME CONSTRAINT "Post_pkey" TO "Article_pkey";',
        reverse=(
            (R, 'ALTER TABLE "public"."Post" RENAME CONSTRAINT "Article_pkey" TO "Post_pkey"'),
        ),
    ),
    Case(
        "rename_type",
        'ALTER TYPE "Role" RENAME TO "UserRole";',
        reverse=((R, 'ALTER TYPE "public"."UserRole" RENAME TO "Role"'),),
    ),
    Case(
        "create_enum",
        "CREATE TYPE \"Status\" AS ENUM ('DRAFT', 'PUBLISHED', 'ARCHIVED');",
        reverse=((R, 'DROP TYPE IF EXISTS "public"."Status"'),),
    ),
    Case(
        "create_schema",
        'CREATE SCHEMA IF NOT EXISTS "billing";',
        reverse=((R, 'DROP SCHEMA IF EXISTS "billing"'),),
    ),
    Case(
        "alter_type_text_to_varchar",
        'ALTER TABLE "User" ALTER COLUMN "name" SET DATA TYPE VARCHAR(100);',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" ALTER COLUMN "name" SET DATA TYPE '
                'text USING "name"::text',
            ),
        ),
    ),
    Case(
        "alter_type_int_to_bigint",
        'ALTER TABLE "Post" ALTER COLUMN "viewCount" SET DATA TYPE BIGINT;',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" ALTER COLUMN "viewCount" SET DATA '
                'TYPE integer USING "viewCount"::integer',
            ),
        ),
    ),
    Case(
        "alter_type_timestamp_to_tz",
        'ALTER TABLE "User" ALTER COLUMN "createdAt" SET DATA TYPE TIMESTAMPTZ(3);',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" ALTER COLUMN "createdAt" SET DATA '
                'TYPE timestamp(3) USING "createdAt"::timestamp(3)',
            ),
        ),
    ),
    Case(
        "alter_type_widen_varchar",
        'ALTER TABLE "Post" ALTER COLUMN "title" SET DATA TYPE VARCHAR(500);',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" ALTER COLUMN "title" SET DATA TYPE '
                'varchar(255) USING "title"::varchar(255)',
            ),
        ),
    ),
    Case(
        "set_not_null",
        'ALTER TABLE "Post" ALTER COLUMN "content" SET NOT NULL;',
        reverse=((R, 'ALTER TABLE "public"."Post" ALTER COLUMN "content" DROP NOT NULL'),),
    ),
    Case(
        "drop_not_null",
        'ALTER TABLE "Post" ALTER COLUMN "title" DROP NOT NULL;',
        reverse=((R, 'ALTER TABLE "public"."Post" ALTER COLUMN "title" SET NOT NULL'),),
    ),
    Case(
        "set_default",
        'ALTER TABLE "Post" ALTER COLUMN "content" SET DEFAULT \'\';',
        reverse=((R, 'ALTER TABLE "public"."Post" ALTER COLUMN "content" DROP DEFAULT'),),
    ),
    Case(
        "drop_default",
        'ALTER TABLE "Post" ALTER COLUMN "published" DROP DEFAULT;',
        reverse=((R, 'ALTER TABLE "public"."Post" ALTER COLUMN "published" SET DEFAULT FALSE'),),
    ),
    Case(
        "set_default_replacing",
        'ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT \'ADMIN\';',
        reverse=((R, 'ALTER TABLE "public"."User" ALTER COLUMN "role" SET DEFAULT \'USER\''),),
    ),
    Case(
        "drop_index",
        'DROP INDEX "Post_authorId_idx";',
        reverse=((R, 'CREATE INDEX "Post_authorId_idx" ON "public"."Post" ("authorId")'),),
    ),
    Case(
        "drop_unique_index",
        'DROP INDEX "User_email_key";',
        reverse=((R, 'CREATE UNIQUE INDEX "User_email_key" ON "public"."User" ("email")'),),
    ),
    Case(
        "drop_foreign_key",
        'ALTER TABLE "Post" DROP CONSTRAINT "Post_authorId_fkey";',
        reverse=(
            (
                R,
                'ALTER TABLE "public"."Post" ADD CONSTRAINT "Post_authorId_fkey" '
                'FOREIGN KEY ("authorId") REFERENCES "public"."User" ("id") ON '
                "DELETE RESTRICT ON UPDATE CASCADE",
            ),
        ),
    ),
    Case(
        "drop_primary_key",
        'ALTER TABLE "Comment" DROP CONSTRAINT "Comment_pkey";',
        reverse=(
            (R, 'ALTER TABLE "public"."Comment" ADD CONSTRAINT "Comment_pkey" PRIMARY KEY ("id")'),
        ),
    ),
    Case(
        "data_losing_add_column_with_default",
        'ALTER TABLE "User" ADD COLUMN "credits" INTEGER NOT NULL DEFAULT 10;',
        setup=USERS,
        reverse=(
            (
                D,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "credits"',
                "User_credits_backup_20261126",
            ),
        ),
    ),
    Case(
        "data_losing_created_table_written_since",
        'CREATE TABLE "Category" (\n    "id" TEXT NOT NULL,\n    CONSTRAINT '
        '"Category_pkey" PRIMARY KEY ("id")\n);',
        writes="INSERT INTO \"Category\" VALUES ('a'), ('b');",
        reverse=((D, 'DROP TABLE IF EXISTS "public"."Category"', "Category_backup_20261126"),),
    ),
    Case(
        "data_losing_column_written_since",
        'ALTER TABLE "User" ADD COLUMN "bio" TEXT;',
        setup=USERS,
        writes='UPDATE "User" SET "bio" = \'hi\' WHERE "id" = \'u1\';',
        reverse=(
            (
                D,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "bio"',
                "User_bio_backup_20261126",
            ),
        ),
    ),
    Case(
        "column_of_nulls_is_reversible",
        'ALTER TABLE "User" ADD COLUMN "bio" TEXT;',
        setup=USERS,
        reverse=(
            (
                R,
                'ALTER TABLE "public"."User" DROP COLUMN IF EXISTS "bio"',
                "User_bio_backup_20261126",
            ),
        ),
    ),
    Case(
        "irreversible_drop_table",
        'DROP TABLE "Comment";',
        reverse=((IRR, None),),
    ),
    Case(
        "irreversible_drop_column",
        'ALTER TABLE "User" DROP COLUMN "name";',
        reverse=((IRR, None),),
    ),
    Case(
        "enum_add_value_stays",
        "ALTER TYPE \"Role\" ADD VALUE 'MODERATOR';",
        reverse=((R, None),),  # left in place with a note: PostgreSQL cannot drop it
        residue=True,
    ),
    Case(
        "irreversible_update",
        'UPDATE "Post" SET "published" = true;',
        reverse=((IRR, None),),
    ),
    Case(
        "irreversible_delete",
        'DELETE FROM "Comment" WHERE "text" = \'\';',
        reverse=((IRR, None),),
    ),
    Case(
        "irreversible_insert",
        'INSERT INTO "Tag" ("name") VALUES (\'news\');',
        reverse=((IRR, None),),
    ),
    Case(
        "drop_unused_enum",
        'DROP TYPE "Role";',
        setup='ALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT; ALTER TABLE '
        '"User" ALTER COLUMN "role" SET DATA TYPE TEXT;',
        # No column uses it and the history gives every value: created again as it was.
        reverse=((R, "CREATE TYPE \"public\".\"Role\" AS ENUM ('USER', 'ADMIN')"),),
    ),
    Case(
        "irreversible_drop_schema",
        'DROP SCHEMA "audit";',
        setup='CREATE SCHEMA "audit";',
        reverse=((IRR, None),),
    ),
    Case(
        "prisma_init_migration",
        "-- CreateEnum\nCREATE TYPE \"Plan\" AS ENUM ('FREE', 'PRO');\n\n-- "
        'CreateTable\nCREATE TABLE "Account" (\n    "id" TEXT NOT NULL,\n '
        '   "userId" TEXT NOT NULL,\n    "plan" "Plan" NOT NULL DEFAULT '
        '\'FREE\',\n    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")\n);\n\n-- '
        'CreateIndex\nCREATE UNIQUE INDEX "Account_userId_key" ON "Account"("userId");\n\n-- '
        'AddForeignKey\nALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" '
        'FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE '
        "ON UPDATE CASCADE;",
        reverse=(
            (R, 'ALTER TABLE "public"."Account" DROP CONSTRAINT IF EXISTS "Account_userId_fkey"'),
            (R, 'DROP INDEX IF EXISTS "public"."Account_userId_key"'),
            (R, 'DROP TABLE IF EXISTS "public"."Account"', "Account_backup_20261126"),
            (R, 'DROP TYPE IF EXISTS "public"."Plan"'),
        ),
    ),
    Case(
        "prisma_add_relation",
        '-- AlterTable\nALTER TABLE "Comment" ADD COLUMN     "authorId" '
        'TEXT;\n\n-- CreateIndex\nCREATE INDEX "Comment_authorId_idx" '
        'ON "Comment"("authorId");\n\n-- AddForeignKey\nALTER TABLE "Comment" '
        'ADD CONSTRAINT "Comment_authorId_fkey" FOREIGN KEY ("authorId") '
        'REFERENCES "User"("id") ON DELETE SET NULL ON UPDATE CASCADE;',
        reverse=(
            (R, 'ALTER TABLE "public"."Comment" DROP CONSTRAINT IF EXISTS "Comment_authorId_fkey"'),
            (R, 'DROP INDEX IF EXISTS "public"."Comment_authorId_idx"'),
            (
                R,
                'ALTER TABLE "public"."Comment" DROP COLUMN IF EXISTS "authorId"',
                "Comment_authorId_backup_20261126",
            ),
        ),
    ),
    Case(
        "prisma_rename_model",
        '-- RenameTable\nALTER TABLE "Comment" RENAME TO "Reply";\n\n-- '
        'RenamePrimaryKey\nALTER TABLE "Reply" RENAME CONSTRAINT "Comment_pkey" '
        'TO "Reply_pkey";',
        reverse=(
            (R, 'ALTER TABLE "public"."Reply" RENAME CONSTRAINT "Reply_pkey" TO "Comment_pkey"'),
            (R, 'ALTER TABLE "public"."Reply" RENAME TO "Comment"'),
        ),
    ),
    Case(
        "prisma_replace_index",
        '-- DropIndex\nDROP INDEX "Post_authorId_idx";\n\n-- CreateIndex\nCREATE '
        'INDEX "Post_authorId_createdAt_idx" ON "Post"("authorId", "viewCount");',
        reverse=(
            (R, 'DROP INDEX IF EXISTS "public"."Post_authorId_createdAt_idx"'),
            (R, 'CREATE INDEX "Post_authorId_idx" ON "public"."Post" ("authorId")'),
        ),
    ),
    Case(
        "prisma_enum_change",
        "-- AlterEnum\nBEGIN;\nCREATE TYPE \"Role_new\" AS ENUM ('USER', "
        '\'EDITOR\');\nALTER TABLE "User" ALTER COLUMN "role" DROP DEFAULT;\nALTER '
        'TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\nALTER '
        'TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME '
        'TO "Role";\nDROP TYPE "Role_old";\nALTER TABLE "User" ALTER '
        "COLUMN \"role\" SET DEFAULT 'USER';\nCOMMIT;",
        reverse=(
            (R, 'ALTER TABLE "public"."User" ALTER COLUMN "role" DROP DEFAULT'),
            (R, "CREATE TYPE \"public\".\"Role_old\" AS ENUM ('USER', 'ADMIN')"),
            (R, 'ALTER TYPE "public"."Role" RENAME TO "Role_new"'),
            (R, 'ALTER TYPE "public"."Role_old" RENAME TO "Role"'),
            (
                R,
                'ALTER TABLE "public"."User" ALTER COLUMN "role" SET DATA TYPE '
                '"Role" USING "role"::text::"Role"',
            ),
            (R, 'ALTER TABLE "public"."User" ALTER COLUMN "role" SET DEFAULT \'USER\''),
            (R, 'DROP TYPE IF EXISTS "public"."Role_new"'),
        ),
    ),
]


def test_the_corpus_has_at_least_sixty_statements():
    assert sum(len(split_statements(case.forward)) for case in CORPUS) >= 60


def _migrated(conn, case: Case):
    conn.execute(BASE)
    if case.setup:
        conn.execute(case.setup)
    conn.execute(case.forward)
    if case.writes:
        conn.execute(case.writes)
    return reverse_script(
        case.forward,
        earlier_sql=[BASE, case.setup],
        live=LiveImpact(conn),
        backup_stamp=STAMP,
    )


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_expected_reverse_and_class(conn, case):
    plan = _migrated(conn, case)

    got = [
        (step.classification, step.sql, step.backup.name.name if step.backup else None)
        for step in plan.steps
    ]
    expected = [(cls, sql, backup[0] if backup else None) for cls, sql, *backup in case.reverse]
    assert got == expected
    for step in plan.steps:
        assert step.reversible or step.note  # an irreversible step always says why
        for statement in step.statements:
            parse_sql(statement)


ROUND_TRIP = [c for c in CORPUS if all(step[0] != IRR for step in c.reverse) and not c.residue]


@pytest.mark.parametrize("case", ROUND_TRIP, ids=[c.id for c in ROUND_TRIP])
def test_round_trip_restores_the_catalog(conn, catalog_snapshot, case):
    conn.execute(BASE)
    if case.setup:
        conn.execute(case.setup)
    before = catalog_snapshot()
    conn.execute(case.forward)
    if case.writes:
        conn.execute(case.writes)
    plan = reverse_script(
        case.forward, earlier_sql=[BASE, case.setup], live=LiveImpact(conn), backup_stamp=STAMP
    )
    script = plan.script(lock_timeout="5s", statement_timeout="60s", title=f"revert {case.id}")
    assert script.startswith(f"-- revert {case.id}\nSET lock_timeout = '5s';\n")

    conn.execute(script)  # one simple query: one implicit transaction, as Prisma runs it
    for backup in plan.backups:
        conn.execute(f"DROP TABLE {backup.name.sql()}")

    assert catalog_snapshot() == before


def test_data_losing_path_keeps_every_value_in_the_backup_table(conn):
    conn.execute(BASE + USERS)
    forward = (
        'ALTER TABLE "User" ADD COLUMN "bio" TEXT;\n'
        'CREATE TABLE "Category" ("id" TEXT NOT NULL, "label" TEXT,'
        ' CONSTRAINT "Category_pkey" PRIMARY KEY ("id"));\n'
    )
    conn.execute(forward)
    conn.execute(
        """UPDATE "User" SET "bio" = 'it''s me' WHERE "id" = 'u1';"""
        """UPDATE "User" SET "bio" = '' WHERE "id" = 'u3';"""
        """INSERT INTO "Category" VALUES ('a', 'A'), ('b', NULL), ('c', 'ç');"""
    )
    bios = set(conn.execute('SELECT "id", "bio" FROM "User"').fetchall())
    categories = set(conn.execute('SELECT * FROM "Category"').fetchall())

    plan = reverse_script(forward, earlier_sql=[BASE], live=LiveImpact(conn), backup_stamp=STAMP)
    table_step, column_step = plan.steps
    assert [s.classification for s in plan.steps] == [D, D]
    assert column_step.effect == (
        'drops column public."User".bio (2 non-null values in 3 rows;'
        ' copied first to public."User_bio_backup_20261126")'
    )
    assert table_step.effect == (
        'drops table public."Category" (3 rows; copied first to public."Category_backup_20261126")'
    )
    conn.execute(plan.script(lock_timeout="5s", statement_timeout="60s"))

    assert set(conn.execute('SELECT * FROM "User_bio_backup_20261126"').fetchall()) == bios
    assert set(conn.execute('SELECT * FROM "Category_backup_20261126"').fetchall()) == categories
    assert conn.execute("SELECT to_regclass('\"Category\"')").fetchone()[0] is None


def test_a_column_backup_without_primary_key_keeps_whole_rows(conn):
    conn.execute(BASE + """INSERT INTO "Tag" VALUES ('x'), ('y');""")
    forward = 'ALTER TABLE "Tag" ADD COLUMN "color" TEXT DEFAULT \'red\';'
    conn.execute(forward)

    plan = reverse_script(forward, earlier_sql=[BASE], live=LiveImpact(conn), backup_stamp=STAMP)

    assert plan.steps[0].backup.sql == (
        'CREATE TABLE "public"."Tag_color_backup_20261126" AS SELECT * FROM "public"."Tag"'
    )


@pytest.mark.parametrize(
    ("table", "column"),
    [("t" * 63, "c"), ("Ünïcödé" * 9, "spalte"), ("users", "x" * 70)],
)
def test_backup_names_fit_postgresqls_63_bytes(table, column):
    name = backup_name(QualifiedName("public", table), column, STAMP).name
    assert len(name.encode()) <= 63
    assert name.endswith("_backup_20261126")
    name.encode().decode()  # never cut inside a character


def test_backup_names_are_unique_within_a_plan():
    forward = (
        f'ALTER TABLE "{"a" * 40}" ADD COLUMN "{"b" * 30}" TEXT;\n'
        f'ALTER TABLE "{"a" * 40}" ADD COLUMN "{"b" * 31}" TEXT;\n'
    )
    plan = reverse_script(forward, backup_stamp=STAMP)
    names = [b.name.name for b in plan.backups]
    assert len(set(names)) == 2 and all(len(n.encode()) <= 63 for n in names)


def test_the_script_sets_timeouts_first_and_parses_again():
    plan = reverse_script('ALTER TABLE "User" ADD COLUMN "a\nb" TEXT;', backup_stamp=STAMP)
    script = plan.script(lock_timeout="3s", statement_timeout="2min", title="x\ny")
    lines = script.splitlines()
    assert lines[:3] == ["-- x y", "SET lock_timeout = '3s';", "SET statement_timeout = '2min';"]
    parse_sql(script)
    # The line break inside the quoted column name cannot end the comment early.
    assert all(
        statement.text.startswith(("SET", "CREATE TABLE", "ALTER TABLE"))
        for statement in split_statements(script)
    )


@pytest.mark.parametrize(
    ("setup", "forward", "pointer"),
    [
        (
            'CREATE TABLE "users_bio_backup_20261120" ("id" TEXT, "bio" TEXT);',
            'ALTER TABLE "User" DROP COLUMN "name";',
            "option 3",
        ),
        (
            'CREATE TABLE "User_name_backup_20261120" AS SELECT "id", "name" FROM "User";',
            'ALTER TABLE "User" DROP COLUMN "name";',
            'backup table public."User_name_backup_20261120" holds a copy',
        ),
        (
            'CREATE TABLE "Comment_backup_20261120_101500" AS SELECT * FROM "Comment";',
            'DROP TABLE "Comment";',
            'backup table public."Comment_backup_20261120_101500" holds a copy',
        ),
    ],
)
def test_irreversible_steps_point_to_a_backup_table_or_option_3(conn, setup, forward, pointer):
    conn.execute(BASE + setup)
    conn.execute(forward)

    plan = reverse_script(forward, earlier_sql=[BASE], live=LiveImpact(conn), backup_stamp=STAMP)

    (step,) = plan.irreversible
    assert step.classification == IRR
    assert pointer in step.note
