"""The seams, checked: who may import whom, how big a function or class may grow, and that
every key a runbook step records is declared in the runbook's params. Read with ``ast``
from the source, so a rule broken anywhere (even in a function-level import) fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from bot.runbooks import RUNBOOKS

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "commands", "handlers")
FUNCTION_MAX_LINES = 60
CLASS_MAX_LINES = 400
# The sandbox's fake Slack Web API mirrors Slack's whole surface in one class.
SIZE_EXEMPT = {Path("bot/sandbox/fake_slack.py")}
SLACK = ("slack_bolt", "slack_sdk", "bot.slack", "commands", "handlers")


def product_modules() -> dict[Path, ast.Module]:
    return {
        path.relative_to(ROOT): ast.parse(path.read_text(), str(path))
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = product_modules()


def imported(tree: ast.Module) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def violations(under: str, forbidden: tuple[str, ...], exempt=()) -> list[str]:
    found = []
    for path, tree in MODULES.items():
        if not str(path).startswith(under) or str(path) in exempt:
            continue
        for name in sorted(imported(tree)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path} imports {name}")
    return found


def test_the_checks_see_every_product_module():
    assert Path("bot/engine/engine.py") in MODULES and Path("handlers/pitr.py") in MODULES
    assert "bot.slack.values" in imported(MODULES[Path("handlers/pitr.py")])


def test_only_the_entry_point_imports_the_sandbox():
    found = [
        v
        for v in violations("", ("bot.sandbox",), exempt={"bot/main.py"})
        if not v.startswith("bot/sandbox/")
    ]
    assert found == []
    assert violations("bot/main.py", ("bot.sandbox",))  # the rule can fail: main does


@pytest.mark.parametrize("package", ["bot/prisma", "bot/sql", "bot/aws"])
def test_the_adapters_import_nothing_of_the_front_ends(package):
    assert violations(package, ("bot.slack", "commands", "handlers")) == []


def direct_pglast_parses(tree: ast.Module) -> set[str]:
    """pglast's parse_sql reached directly: imported, or called as ``pglast.parse_sql``."""
    found = {n for n in imported(tree) if n in ("pglast.parse_sql", "pglast.parser.parse_sql")}
    for node in ast.walk(tree):
        name = getattr(node, "value", None)
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "parse_sql"
            and isinstance(name, ast.Name)
        ):
            found |= {f"{name.id}.parse_sql"} if name.id in ("pglast", "parser") else set()
    return found


def test_every_sql_parse_goes_through_the_one_front_end():
    """bot/sql/parse.py builds pglast's tree from libpg_query's JSON, proven equal to
    pglast's own parse (tests/unit/sql/test_parse_front.py): one parse path for the safety
    analysis and the reverse generator, not two to keep equal."""
    front_end = Path("bot/sql/parse.py")
    direct = [
        f"{p}: {sorted(n)}"
        for p, t in MODULES.items()
        if p != front_end and (n := direct_pglast_parses(t))
    ]
    assert direct == []
    assert direct_pglast_parses(MODULES[front_end])  # the rule can fail: the front end does


def test_the_engine_imports_nothing_of_slack():
    assert violations("bot/engine", SLACK) == []


def test_no_product_function_or_class_is_outsized():
    too_big = []
    for path, tree in MODULES.items():
        if path in SIZE_EXEMPT:
            continue
        for node in ast.walk(tree):
            lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if lines > FUNCTION_MAX_LINES:
                    too_big.append(f"{path}: function {node.name} has {lines} lines")
            elif isinstance(node, ast.ClassDef) and lines > CLASS_MAX_LINES:
                too_big.append(f"{path}: class {node.name} has {lines} lines")
    assert too_big == []


def recorded_keys(module_name: str) -> set[str]:
    """The keywords of every ``ctx.record(...)`` call in a module."""
    tree = ast.parse(Path(importlib.import_module(module_name).__file__).read_text())
    return {
        keyword.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "record"
        for keyword in node.keywords
        if keyword.arg
    }


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_every_key_a_step_records_is_a_declared_param(name):
    """A step that records an undeclared key fails at that moment (the engine checks): here
    it fails before any operation runs."""
    runbook = RUNBOOKS[name]
    assert dataclasses.is_dataclass(runbook.params), f"{name} declares no params"
    declared = {f.name for f in dataclasses.fields(runbook.params)}
    modules = {step.action.__module__ for step in runbook.steps}
    undeclared = {key for module in modules for key in recorded_keys(module)} - declared
    assert undeclared == set()


def module_map() -> set[Path]:
    """The files the module map in ARCHITECTURE.md names (its indented tree)."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    tree = text.split("## Module map", 1)[1].split("```", 2)[1]
    paths, parents = set(), []
    for line in tree.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        parents[depth:] = [name.rstrip("/")]
        if not name.endswith("/"):
            paths.add(Path(*parents))
    return paths


def test_the_module_map_is_the_directory_tree():
    listed = module_map()
    files = {path for path in MODULES if path.name != "__init__.py"}
    assert sorted(files - listed) == [], "in the tree, missing from ARCHITECTURE.md's map"
    assert sorted(p for p in listed if not (ROOT / p).exists()) == [], "mapped, not in the tree"


# --- the state's SQL and the engine's parts have one owner each ---------------------------

STATE_TABLES = [
    "approval_copies",
    "approvals",
    "audit",
    "bot_channels",
    "card_messages",
    "checklist_items",
    "decisions",
    "once_markers",
    "operations",
    "scheduled_jobs",
    "seen_events",
    "steps",
    "schema_version",
]
_STATE_SQL = re.compile(
    r"(?is)\b(?:from|into|update|join|table|truncate)\s+(?:[a-z_]+\.)?\"?("
    + "|".join(STATE_TABLES)
    + r")\b\"?"
)


def strings(tree: ast.Module):
    """Every string a module holds (an f-string's literal parts joined around ``{}``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            parts = (v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, "".join(parts)


def state_sql(tree: ast.Module) -> list[str]:
    return [
        f"{line}: {m.group(0)!r}" for line, text in strings(tree) for m in _STATE_SQL.finditer(text)
    ]


def test_the_store_owns_every_statement_on_the_state_tables():
    """Everything outside bot/store reads and writes typed records through the store: a
    statement on a state table anywhere else fails here (the store's own SQL proves the
    check sees such statements)."""
    outside = {
        str(p): found
        for p, t in MODULES.items()
        if not str(p).startswith("bot/store/") and (found := state_sql(t))
    }
    assert outside == {}
    assert state_sql(MODULES[Path("bot/store/sqlite.py")])  # the rule can fail


ENGINE_PARTS = {"walker", "gates", "decisions", "custody", "keeper"}


def engine_internals(tree: ast.Module) -> list[str]:
    """``engine.walker``, ``self.engine._x``, ``core.engine.gates``: an engine's part or
    private attribute reached from outside the engine."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        named_engine = (isinstance(owner, ast.Name) and owner.id == "engine") or (
            isinstance(owner, ast.Attribute) and owner.attr == "engine"
        )
        if named_engine and (node.attr in ENGINE_PARTS or node.attr.startswith("_")):
            found.append(f"{node.lineno}: engine.{node.attr}")
    return found


def test_front_ends_hold_the_engines_public_methods_only():
    outside = {
        str(p): found
        for p, t in MODULES.items()
        if not str(p).startswith("bot/engine/") and (found := engine_internals(t))
    }
    assert outside == {}
    sample = ast.parse("def f(self):\n    self.engine.walker.kick(1)\n    engine._lock\n")
    assert sorted(engine_internals(sample)) == ["2: engine.walker", "3: engine._lock"]


# --- what the code says of itself stays true ------------------------------------------------

_NAMED_FILE = re.compile(
    r"(?<![\w/.-])((?:bot|commands|handlers|tests|docs|bench)/[\w/.-]*\w"
    r"\.(?:py|md|toml|json|sql|yml|yaml|txt))\b"
)
_ISSUE_NUMBER = re.compile(r"(?i)(?<![\w-])issues? #?\d+\b")


def text_files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for package in (*PRODUCT, "tests", "bench"):
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def test_every_file_a_comment_or_document_names_exists():
    """A docstring that sends the reader to a file moved since is worse than none.
    (bench/results.md is a dated log: its rows name the files as they were.)"""
    missing = [
        f"{path.relative_to(ROOT)}:{n}: {m.group(1)}"
        for path in text_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in _NAMED_FILE.finditer(line)
        if not (ROOT / m.group(1)).exists()
    ]
    assert missing == []
    assert _NAMED_FILE.search("see bot/" + "store.py") is not None  # the rule can fail


def test_the_product_explains_itself_without_issue_numbers():
    """The code says why, not which ticket asked (an issue tracker's numbers mean nothing
    to the next reader; an upstream project's issue, named as such, is a reference)."""
    found = [
        f"{p}:{line}: {m.group(0)}"
        for p, t in MODULES.items()
        for line, text in strings(t)
        for m in _ISSUE_NUMBER.finditer(text)
    ]
    comments = [
        f"{p}:{n}: {line.strip()}"
        for p in MODULES
        for n, line in enumerate((ROOT / p).read_text().splitlines(), 1)
        if "#" in line
        and _ISSUE_NUMBER.search(line.split("#", 1)[1])
        and "prisma-engines issue" not in line
    ]
    assert found + comments == []
