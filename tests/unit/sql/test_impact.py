"""What a reverse migration would destroy, read from the live catalog."""

from __future__ import annotations

from bot.sql.impact import LiveImpact, plan_impact
from bot.sql.names import QualifiedName
from bot.sql.reverse import StepClass, reverse_script

SETUP = (
    'CREATE TABLE "User" ("id" TEXT NOT NULL, CONSTRAINT "User_pkey" PRIMARY KEY ("id"));'
    """INSERT INTO "User" SELECT 'u' || n FROM generate_series(1, 12345) n;"""
)
FORWARD = (
    'ALTER TABLE "User" ADD COLUMN "bio" TEXT;\n'
    'CREATE TABLE "Post" ("id" SERIAL NOT NULL, "authorId" TEXT,'
    ' CONSTRAINT "Post_pkey" PRIMARY KEY ("id"));\n'
)
USER = QualifiedName("public", "User")


def migrated(conn):
    conn.execute(SETUP)
    conn.execute(FORWARD)
    conn.execute("""UPDATE "User" SET "bio" = 'x' WHERE "id" <> 'u1'""")


def test_contents_counts_rows_and_non_null_values(conn):
    migrated(conn)
    live = LiveImpact(conn)

    contents = live.contents(USER, "bio")

    assert (contents.rows, contents.values, contents.key_columns) == (12345, 12344, ("id",))
    assert live.contents(USER, "nope") is None
    assert live.contents(QualifiedName("public", "Nope"), None) is None


def test_the_plan_says_it_plainly_with_dependents(conn):
    migrated(conn)
    conn.execute(
        'CREATE VIEW "user_bios" AS SELECT "id", "bio" FROM "User";'
        'CREATE TABLE "Like" ("postId" INTEGER REFERENCES "Post"("id"));'
    )
    live = LiveImpact(conn, statement_timeout="30s")
    plan = reverse_script(FORWARD, live=live, backup_stamp="20261126")

    drop_post, drop_bio = plan_impact(plan, live)

    assert drop_bio.classification == StepClass.DATA_LOSING
    assert drop_bio.effect.startswith(
        'drops column public."User".bio (12,344 non-null values in 12,345 rows;'
        ' copied first to public."User_bio_backup_20261126")'
    )
    assert drop_bio.dependents == ("view public.user_bios",)
    assert "the DROP fails (no CASCADE)" in drop_bio.effect
    assert drop_post.classification == StepClass.REVERSIBLE  # created, still empty
    assert drop_post.dependents == ('foreign key "Like_postId_fkey" on public."Like"',)
    assert drop_post.to_dict()["backup"] == ["public", "Post_backup_20261126"]


def test_backup_of_finds_the_newest_backup_holding_the_column(conn):
    conn.execute(
        'CREATE TABLE "users" ("id" int, "bio" text);'
        'CREATE TABLE "users_bio_backup_20261101" ("id" int, "bio" text);'
        'CREATE TABLE "users_bio_backup_20261120" ("id" int, "bio" text);'
        'CREATE TABLE "users_backup_20261125" ("id" int);'
        'CREATE TABLE "usersbackup" ("bio" text);'
    )
    live = LiveImpact(conn)
    users = QualifiedName("public", "users")

    assert live.backup_of(users, "bio") == QualifiedName("public", "users_bio_backup_20261120")
    assert live.backup_of(users, None) == QualifiedName("public", "users_bio_backup_20261120")
    assert live.backup_of(users, "email") is None
