"""docs/ci/github-actions-check.yml as GitHub would run it: the file parses, its steps run
with bash in a real git repository (a base branch and a pull request adding migrations),
the `rollback-bot check` line is accepted by the real argument parser and runs the
installed console script, and the exit status it records is what the last step fails on."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.main import _parser

WORKFLOW = Path(__file__).parents[3] / "docs" / "ci" / "github-actions-check.yml"
INIT = "20260101000000_init"
ADD = "20260102000000_add_nickname"
DROP = "20260103000000_drop_bio"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def step(name: str) -> dict:
    (found,) = [s for s in workflow()["jobs"]["check"]["steps"] if s.get("name") == name]
    return found


def expand(script: str, values: dict[str, str]) -> str:
    """GitHub's ${{ ... }} expressions replaced as the runner does, before bash runs."""

    def value(match: re.Match) -> str:
        return values[match[1]]

    expanded = re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", value, script)
    assert "${{" not in expanded
    return expanded


def run_step(name: str, repo: Path, values: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Runs the step's script with bash (as `run:` does) in ``repo``; its $GITHUB_OUTPUT."""
    output, summary = tmp_path / "github_output", tmp_path / "step_summary"
    output.write_text("")
    env = {
        **os.environ,
        # The installed console script, as `pip install` in the workflow puts it on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MIGRATIONS_DIR": workflow()["env"]["MIGRATIONS_DIR"],
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    script = expand(step(name)["run"], values)
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project whose main branch has INIT; the pull request adds ADD and DROP and edits
    INIT's neighbour file (an edit is not an added migration)."""
    root = tmp_path / "project"
    migrations = root / workflow()["env"]["MIGRATIONS_DIR"]
    migrations.mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')

    def add(name: str, sql: str) -> None:
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(sql)

    add(INIT, 'CREATE TABLE "User" ("id" TEXT PRIMARY KEY, "bio" TEXT);\n')
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    git(root, "update-ref", "refs/remotes/origin/main", "HEAD")  # what checkout fetched
    git(root, "checkout", "-q", "-b", "feature")
    add(ADD, 'ALTER TABLE "User" ADD COLUMN "nickname" TEXT;\n')
    add(DROP, 'ALTER TABLE "User" DROP COLUMN "bio";\n')
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n# edited\n')
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "feature")
    return root


def test_the_workflow_runs_on_migration_changes_and_tolerates_a_forks_read_only_token():
    flow = workflow()
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert list(on) == ["pull_request"]  # never pull_request_target: the fork's code runs
    assert "prisma/migrations/**" in on["pull_request"]["paths"]
    assert flow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert step("Comment on the pull request")["continue-on-error"] is True
    assert "read-only GITHUB_TOKEN" in WORKFLOW.read_text()
    assert (
        "steps.check.outputs.status != '0'"
        in step("Fail when a migration destroys data without an acknowledgement")["if"]
    )


def test_the_added_migrations_step_names_what_the_pull_request_adds(repo, tmp_path):
    outputs = run_step(
        "Migrations this pull request adds", repo, {"github.base_ref": "main"}, tmp_path
    )
    assert shlex.split(outputs["args"]) == ["--migration", ADD, "--migration", DROP]


def check_argv(args: str, *extra: str) -> list[str]:
    """The check step's `rollback-bot` command line as bash would split it."""
    run = expand(step("rollback-bot check")["run"], {"steps.added.outputs.args": args})
    (line,) = [
        line for line in run.replace("\\\n", " ").splitlines() if "rollback-bot check" in line
    ]
    command = line.split(">")[0].replace('"$MIGRATIONS_DIR"', "prisma/migrations")
    argv = shlex.split(command)
    assert argv[0] == "rollback-bot"
    return argv[1:] + list(extra)


def test_the_check_line_and_its_database_variant_are_what_the_parser_accepts():
    args = _parser().parse_args(check_argv(f"--migration {ADD} --migration {DROP}"))
    assert args.command == "check" and args.format == "markdown"
    assert args.migrations_dir == "prisma/migrations" and args.migration == [ADD, DROP]
    # The database variant, as the step's comment documents it.
    documented = re.search(r"`(--database-url-env \w+)`", WORKFLOW.read_text())
    assert documented and "STAGING_DATABASE_URL" in documented[1]
    variant = _parser().parse_args(check_argv("", *documented[1].split()))
    assert variant.database_url_env == "STAGING_DATABASE_URL"
    with pytest.raises(SystemExit):  # the parser is strict: a flag it lacks fails the step
        _parser().parse_args(check_argv("", "--migrations-directory", "x"))


@pytest.mark.parametrize(
    ("added", "status"),
    [
        ([ADD], "0"),  # additive: passes
        ([ADD, DROP], "1"),  # a column dropped, not acknowledged: the job fails
    ],
)
def test_the_check_step_records_the_status_the_last_step_fails_on(repo, tmp_path, added, status):
    args = " ".join(f"--migration {name}" for name in added)
    outputs = run_step("rollback-bot check", repo, {"steps.added.outputs.args": args}, tmp_path)
    assert outputs["status"] == status
    report = (repo / "check.md").read_text()
    assert report.startswith("## rollback-bot check: Migration Safety Checklist")
    assert (tmp_path / "step_summary").read_text() == report  # the job summary has it too
    for name in added:
        assert f"<code>{name}</code>" in report
