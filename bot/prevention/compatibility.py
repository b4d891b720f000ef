"""The Migration Safety Checklist's first two questions, answered per schema change: "Is
this change backward compatible?" (does code still running on the old schema keep working
while and after it runs) and "Can the application work with both old and new schema?"
(the expand/contract way to get there when it cannot).

During a deploy the old release serves traffic until the new one is up, and a rollback of
the code (not the database) brings it back: whatever the old code reads or writes must
still exist and accept its writes. The rules follow strong_migrations' list of dangerous
operations (removing, renaming or changing the type of a column or table, NOT NULL without
a default, ...), read from the statement's AST by bot.sql.changes, never from the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pglast.enums import ConstrType

from bot.sql.changes import Change, ChangeKind


class Compatibility(StrEnum):
    COMPATIBLE = "compatible"  # old code keeps working
    CONDITIONAL = "conditional"  # old code keeps working only if what it writes fits
    BREAKING = "breaking"  # old code that uses the object fails


@dataclass(frozen=True)
class CompatibilityFinding:
    change: Change
    compatibility: Compatibility
    why: str  # what happens to code still running on the old schema
    advice: str = ""  # the expand/contract way to make the same change safely

    def to_dict(self) -> dict:
        return {
            "change": self.change.description,
            "kind": str(self.change.kind),
            "compatibility": str(self.compatibility),
            "why": self.why,
            "advice": self.advice,
        }


C, COND, B = Compatibility.COMPATIBLE, Compatibility.CONDITIONAL, Compatibility.BREAKING

# Expand/contract advice, by what makes the change unsafe (strong_migrations' "safe
# alternatives", written for Prisma's release cycle).
DROP_ADVICE = (
    "Contract in two releases: first deploy code that no longer reads or writes it (remove"
    " it from schema.prisma, `prisma generate`, deploy), then drop it in a later migration."
)
RENAME_ADVICE = (
    "Expand/contract: add the new name alongside the old (a new column or table, or a view),"
    " write both, backfill, move reads to the new name, then drop the old one in a later"
    " release. Or keep the database name and rename only in schema.prisma with @map/@@map."
)
TYPE_ADVICE = (
    "Expand/contract: add a column of the new type, write both, backfill in batches, move"
    " reads to it, then drop the old column in a later release."
)
NOT_NULL_ADVICE = (
    "Add it nullable or with a DEFAULT, deploy code that always writes it, backfill the"
    " existing rows, then add NOT NULL in a later migration (a CHECK (col IS NOT NULL)"
    " NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL scans without blocking writes)."
)
CONSTRAINT_ADVICE = (
    "Deploy code that already writes only rows that satisfy it first; add it NOT VALID and"
    " VALIDATE CONSTRAINT in a later migration so existing rows are checked without"
    " blocking writes."
)
UNIQUE_ADVICE = (
    "Deploy code that never writes duplicates first; check the existing rows have none; then"
    " add the unique index."
)
ENUM_ADVICE = (
    "Expand/contract: add the new value, deploy code that writes it instead of the old one,"
    " migrate the rows, then remove the old value in a later release."
)
REVIEW_BY_HAND = "The bot does not analyse this statement: read it and answer by hand."

# Column types with a default of their own (a sequence or an identity).
_SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})
_DEFAULTING_CONSTRAINTS = frozenset(
    {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}
)


def classify(change: Change) -> CompatibilityFinding:
    rule = _RULES.get(change.kind)
    if rule is None:
        return CompatibilityFinding(change, COND, "not analysed", REVIEW_BY_HAND)
    return rule(change)


def _fixed(compatibility: Compatibility, why: str, advice: str = ""):
    return lambda change: CompatibilityFinding(change, compatibility, why, advice)


def _add_column(change: Change) -> CompatibilityFinding:
    spec = change.column
    if spec is None or not spec.not_null or _has_default(change):
        return CompatibilityFinding(change, C, "a new column the old code does not know about")
    return CompatibilityFinding(
        change,
        B,
        "NOT NULL without a DEFAULT: every INSERT of the old code (which does not set it)"
        " fails, and the statement itself fails if the table has rows",
        NOT_NULL_ADVICE,
    )


def _has_default(change: Change) -> bool:
    spec = change.column
    if spec is None:
        return False
    if spec.definition.typeName is not None:
        names = [n.sval.lower() for n in spec.definition.typeName.names or ()]
        if names and names[-1] in _SERIAL_TYPES:
            return True
    constraints = spec.definition.constraints or ()
    return any(c.contype in _DEFAULTING_CONSTRAINTS for c in constraints)


def _add_constraint(change: Change) -> CompatibilityFinding:
    kind = change.constraint_type or "constraint"
    if kind in ("UNIQUE", "PRIMARY KEY", "EXCLUDE"):
        return CompatibilityFinding(
            change, COND, f"old code that writes duplicates fails on the new {kind}", UNIQUE_ADVICE
        )
    return CompatibilityFinding(
        change,
        COND,
        f"old code that writes rows violating the new {kind} fails",
        CONSTRAINT_ADVICE,
    )


def _create_index(change: Change) -> CompatibilityFinding:
    if change.constraint_type == "UNIQUE":
        return CompatibilityFinding(
            change, COND, "old code that writes duplicates fails on the unique index", UNIQUE_ADVICE
        )
    return CompatibilityFinding(change, C, "an index changes no query's result")


def _data_change(change: Change) -> CompatibilityFinding:
    verb = change.description.split(" ", 1)[0].upper()
    if verb in ("DELETE", "TRUNCATE"):
        return CompatibilityFinding(
            change, COND, "rows the old code may still read are removed", DROP_ADVICE
        )
    return CompatibilityFinding(
        change,
        COND,
        "changes rows the old code reads: compatible only if the old code accepts the new values",
        "Backfill in batches outside the schema migration when the table is large.",
    )


_RULES = {
    ChangeKind.CREATE_TABLE: _fixed(C, "a new table the old code does not use"),
    ChangeKind.DROP_TABLE: _fixed(B, "old code that reads or writes the table fails", DROP_ADVICE),
    ChangeKind.RENAME_TABLE: _fixed(B, "old code still uses the old table name", RENAME_ADVICE),
    ChangeKind.ADD_COLUMN: _add_column,
    ChangeKind.DROP_COLUMN: _fixed(
        B,
        "old code selects and inserts the column by name (Prisma lists every column)",
        DROP_ADVICE,
    ),
    ChangeKind.RENAME_COLUMN: _fixed(B, "old code still uses the old column name", RENAME_ADVICE),
    ChangeKind.ALTER_COLUMN_TYPE: _fixed(
        B,
        "old code reads and writes the old type (its Prisma client was built for it)",
        TYPE_ADVICE,
    ),
    ChangeKind.SET_NOT_NULL: _fixed(
        B, "old code that writes NULL (or omits the column) fails", NOT_NULL_ADVICE
    ),
    ChangeKind.DROP_NOT_NULL: _fixed(C, "every write of the old code is still accepted"),
    ChangeKind.SET_DEFAULT: _fixed(C, "old code that sets the column is unaffected"),
    ChangeKind.DROP_DEFAULT: _fixed(
        COND,
        "old code that relies on the database default (omits the column) fails if the"
        " column is NOT NULL",
        "Deploy code that always writes the column first, then drop the default.",
    ),
    ChangeKind.CREATE_INDEX: _create_index,
    ChangeKind.DROP_INDEX: _fixed(
        C,
        "no query's result changes; queries that used it may get slower, and an upsert"
        " that relied on a unique index fails",
    ),
    ChangeKind.RENAME_INDEX: _fixed(C, "queries do not name indexes"),
    ChangeKind.ADD_CONSTRAINT: _add_constraint,
    ChangeKind.DROP_CONSTRAINT: _fixed(C, "every write of the old code is still accepted"),
    ChangeKind.RENAME_CONSTRAINT: _fixed(C, "queries do not name constraints"),
    ChangeKind.CREATE_TYPE: _fixed(C, "a new type the old code does not use"),
    ChangeKind.DROP_TYPE: _fixed(
        B, "old code that casts to the type (Prisma casts enum values) fails", DROP_ADVICE
    ),
    ChangeKind.RENAME_TYPE: _fixed(
        B, "old code casts to the old type name (Prisma casts enum values)", RENAME_ADVICE
    ),
    ChangeKind.ADD_ENUM_VALUE: _fixed(
        C, "old code never writes the new value (a row with it fails to load in old code)"
    ),
    ChangeKind.RENAME_ENUM_VALUE: _fixed(
        B, "old code still writes and expects the old value", ENUM_ADVICE
    ),
    ChangeKind.CREATE_VIEW: _fixed(C, "a new view the old code does not use"),
    ChangeKind.DROP_VIEW: _fixed(B, "old code that reads the view fails", DROP_ADVICE),
    ChangeKind.CREATE_SEQUENCE: _fixed(C, "a new sequence the old code does not use"),
    ChangeKind.DROP_SEQUENCE: _fixed(
        B, "defaults and old code that use the sequence fail", DROP_ADVICE
    ),
    ChangeKind.CREATE_FUNCTION: _fixed(
        COND,
        "a new or replaced function: old code that calls a replaced one gets the new behaviour",
    ),
    ChangeKind.DROP_FUNCTION: _fixed(B, "old code or triggers that call it fail", DROP_ADVICE),
    ChangeKind.CREATE_TRIGGER: _fixed(
        COND, "the trigger runs on the old code's writes too", REVIEW_BY_HAND
    ),
    ChangeKind.DROP_TRIGGER: _fixed(
        COND, "what the trigger did on the old code's writes stops", REVIEW_BY_HAND
    ),
    ChangeKind.COMMENT: _fixed(C, "a comment changes nothing the code sees"),
    ChangeKind.CREATE_SCHEMA: _fixed(C, "a new schema the old code does not use"),
    ChangeKind.DROP_SCHEMA: _fixed(B, "old code that uses objects in it fails", DROP_ADVICE),
    ChangeKind.CREATE_EXTENSION: _fixed(C, "new types and functions the old code does not use"),
    ChangeKind.DROP_EXTENSION: _fixed(
        B, "old code using its types or functions fails", DROP_ADVICE
    ),
    ChangeKind.DATA_CHANGE: _data_change,
    ChangeKind.DO_BLOCK: _fixed(COND, "procedural code", REVIEW_BY_HAND),
    ChangeKind.OTHER: _fixed(COND, "not analysed", REVIEW_BY_HAND),
}
