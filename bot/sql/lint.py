"""squawk (the squawk-cli package) lints a generated migration for what locks or breaks
clients; its findings go on the review card. A missing binary is reported, never fatal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

LINT_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class LintFinding:
    line: int  # 1-based line in the linted SQL
    rule: str  # e.g. "ban-drop-column"
    level: str  # "Warning" or "Error"
    message: str
    help: str | None = None

    def to_dict(self) -> dict:
        return {
            "line": self.line,
            "rule": self.rule,
            "level": self.level,
            "message": self.message,
            "help": self.help,
        }


@dataclass(frozen=True)
class LintResult:
    findings: tuple[LintFinding, ...] = ()
    unavailable: str | None = None  # why squawk could not lint (missing, crashed, timed out)

    def to_dict(self) -> dict:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "unavailable": self.unavailable,
        }


def squawk_binary() -> str | None:
    """squawk-cli's wheel installs the binary into the environment's scripts directory,
    which is not on PATH when the bot runs as ``.venv/bin/rollback-bot`` without activating
    the virtualenv: look there too."""
    found = shutil.which("squawk")
    if found:
        return found
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "squawk"
        if candidate.is_file():
            return str(candidate)
    return None


def lint(sql: str, *, binary: str | None = None) -> LintResult:
    squawk = binary or squawk_binary()
    if squawk is None:
        return LintResult(unavailable="squawk is not installed (pip install squawk-cli)")
    with tempfile.TemporaryDirectory(prefix="rollback-lint-") as tmp:
        path = Path(tmp) / "migration.sql"
        path.write_text(sql)
        try:
            done = subprocess.run(
                [squawk, "--reporter", "json", str(path)],
                capture_output=True,
                text=True,
                timeout=LINT_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return LintResult(unavailable=f"squawk could not run: {exc}")
    # squawk exits 1 when it has findings, 0 when it has none; anything else is a failure.
    if done.returncode not in (0, 1):
        return LintResult(unavailable=f"squawk failed: {done.stderr.strip()[:300]}")
    try:
        reported = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return LintResult(unavailable="squawk's output was not JSON")
    return LintResult(tuple(_finding(item) for item in reported))


def _finding(item: dict) -> LintFinding:
    # squawk's JSON reporter counts lines from 0.
    return LintFinding(
        int(item.get("line", 0)) + 1,
        str(item.get("rule_name", "")),
        str(item.get("level", "")),
        str(item.get("message", "")),
        item.get("help"),
    )
