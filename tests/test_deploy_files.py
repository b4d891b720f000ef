"""The deployment files agree with README and with the code (no Docker engine here, so
nothing is built): the Dockerfile runs README's install steps, the image runs `serve` as a
user without privileges with the state in a volume and a health check on the probe the
bot serves; the build context holds what `pip install .` needs; the compose example runs
one bot beside a PostgreSQL."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from bot.probes import HEALTH_PATH
from bot.settings import load_config

ROOT = Path(__file__).parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


def readme_install_steps() -> list[str]:
    block = README.split("<!-- install-steps -->", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_the_image_runs_readmes_install_steps_in_order():
    steps = readme_install_steps()
    assert steps, "README's install-steps block is empty"
    runs = [rest for keyword, rest in stages()[0] if keyword == "RUN"]
    assert runs == steps


def test_the_build_copies_what_pip_install_needs_and_nothing_it_excludes():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = " ".join(rest for keyword, rest in stages()[0] if keyword == "COPY")
    for needed in [
        "pyproject.toml",
        "README.md",
        *[p.rstrip("*") for p in packages["packages"]["find"]["include"]],
    ]:
        assert needed in copied, needed
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "*.db", "tests"} <= ignored
    assert not ({"README.md", "pyproject.toml", "bot", "commands", "handlers"} & ignored)


def test_the_python_of_the_image_is_one_the_package_supports():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(n) for n in requires.removeprefix(">=").split("."))
    bases = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert len(set(bases)) == 1, "build and run stages must share one base (the venv's python)"
    version = re.match(r"python:(\d+)\.(\d+)-slim$", bases[0])
    assert version and tuple(int(n) for n in version.groups()) >= minimum


def test_the_image_serves_as_an_unprivileged_user_with_state_in_a_volume():
    run = dict(stages()[-1])
    assert run["USER"].isdigit() and int(run["USER"]) >= 1000
    volume = run["VOLUME"].strip('[]"')
    entrypoint = json.loads(run["ENTRYPOINT"])
    assert entrypoint[:2] == ["rollback-bot", "serve"]
    port = entrypoint[entrypoint.index("--port") + 1]
    assert run["EXPOSE"] == port
    assert f"127.0.0.1:{port}{HEALTH_PATH}" in run["HEALTHCHECK"]
    assert "ROLLBACK_BOT_CONFIG=" in run["ENV"]
    # The home the state lives in is the volume, and README says to put state_db there.
    assert f'state_db = "{volume}/state.db"' in README


def test_the_compose_example_runs_one_bot_beside_postgresql_with_its_state_volume():
    compose = yaml.safe_load((ROOT / "compose.example.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    bot = services["rollback-bot"]
    assert bot["build"] == "."
    assert bot["deploy"]["replicas"] == 1
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    run = dict(stages()[-1])
    volume = run["VOLUME"].strip('[]"')
    assert any(v.endswith(f":{volume}") for v in bot["volumes"])
    assert all(p.startswith("127.0.0.1:") for p in bot["ports"])


def test_the_compose_examples_config_exists_and_the_bot_reads_it():
    """The config file compose.example.yaml mounts is in the repository, the bot's own
    loader accepts it, and what it names is what the compose file and the image provide."""
    bot = yaml.safe_load((ROOT / "compose.example.yaml").read_text())["services"]["rollback-bot"]
    mounts = dict(reversed(v.removesuffix(":ro").split(":", 1)) for v in bot["volumes"])
    host = mounts[bot["environment"]["ROLLBACK_BOT_CONFIG"]]
    assert host.startswith("./"), host
    config = load_config(ROOT / host)  # raises ConfigError with the reason
    volume = dict(stages()[-1])["VOLUME"].strip('[]"')
    assert config.state_db == Path(volume) / "state.db"
    for env in config.environments.values():
        assert env.database_url_env in bot["environment"], env.name
        assert str(env.migrations_dir) in mounts, f"{env.name}: {env.migrations_dir} not mounted"
