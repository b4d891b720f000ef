"""The real Prisma CLI as a test oracle (see docs/reference/prisma-oracle.md).

What this harness does to run it here, plainly:
- Installs ``prisma@6.19.3 @prisma/adapter-pg@6.19.3 pg@8`` from the npm registry with
  ``--ignore-scripts`` into a throw-away cache OUTSIDE the repository, keyed by version
  (``~/.cache/rollback-bot-prisma-oracle/6.19.3``, or ``$ROLLBACK_BOT_PRISMA_ORACLE_CACHE``).
  The native schema engine is never downloaded (its host is unreachable here): Prisma
  6.19 runs its schema engine as WebAssembly through the pg driver adapter
  (``engine: "js"`` in prisma.config.ts), and PRISMA_SCHEMA_ENGINE_BINARY=/bin/false &
  co. stop the CLI from looking for native engines.
- PATCHES THAT THROW-AWAY INSTALL: ``@prisma/adapter-pg`` 6.19.3 cannot decode PostgreSQL's
  ``name`` type (oid 19), a known open upstream bug (prisma/orm issue 27403) that makes
  every migrate command fail with "Column type 'name' could not be deserialized from the
  database". The harness adds ``case 19`` and ``case 1003`` (``name[]``) to the adapter's
  column-type switch, next to ``ScalarColumnType.TEXT``, in dist/index.js and
  dist/index.mjs.
- PATCHES ITS SCRIPT TRANSPORT TOO: the adapter's ``executeScript`` splits a migration on
  every ``;`` and sends the pieces one by one, so it fails on ``DO $$ ... $$`` bodies and on
  a ``;`` inside a comment or a string, and a migration that fails part-way keeps its first
  statements, while Prisma's native schema engine sends the whole script as one simple
  query (docs/reference/prisma-oracle.md). The harness adds, at the top of
  ``executeScript`` in dist/index.js and dist/index.mjs, a branch that sends the whole
  script with ``this.client.query(script)`` when ROLLBACK_BOT_ORACLE_TRANSPORT=whole; any
  other value (or none) keeps the adapter's own splitting. Every project here says which
  transport it uses: ``whole`` (the native engine's behaviour, for deploy and status
  parity) or ``split`` (the adapter's, for the "failed mid-way, statements applied one by
  one" scenario). Nothing else of Prisma is changed, and nothing in the repository is.
- ``prisma migrate resolve`` still needs the native engine in 6.19, so only ``migrate
  deploy`` and ``migrate status`` are used as the oracle.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PRISMA_VERSION = "6.19.3"
NPM_PACKAGES = (f"prisma@{PRISMA_VERSION}", f"@prisma/adapter-pg@{PRISMA_VERSION}", "pg@8")
CACHE_ROOT = Path(
    os.environ.get(
        "ROLLBACK_BOT_PRISMA_ORACLE_CACHE", Path.home() / ".cache" / "rollback-bot-prisma-oracle"
    )
)
INSTALL_TIMEOUT = 600
CLI_TIMEOUT = 120

PATCH_MARKER = "patched by rollback-bot's oracle harness"
PATCH_ANCHOR = "    case ScalarColumnType.TEXT:\n"
PATCH_LINES = (
    f"    case 19: // name -- {PATCH_MARKER} (prisma/orm#27403)\n    case 1003: // name[]\n"
)
ADAPTER_FILES = ("index.js", "index.mjs")
TRANSPORT_VARIABLE = "ROLLBACK_BOT_ORACLE_TRANSPORT"
WHOLE_SCRIPT, SPLIT_SCRIPT = "whole", "split"
SCRIPT_MARKER = "whole-script transport: patched by rollback-bot's oracle harness"
SCRIPT_ANCHOR = "  async executeScript(script) {\n"
SCRIPT_LINES = f"""    // {SCRIPT_MARKER}
    if (process.env.{TRANSPORT_VARIABLE} === "{WHOLE_SCRIPT}") {{
      try {{
        await this.client.query(script);
      }} catch (error) {{
        this.onError(error);
      }}
      return;
    }}
"""

CLI_ENV = {
    # Never download or look for native engines; the WebAssembly engine does the work.
    "PRISMA_SCHEMA_ENGINE_BINARY": "/bin/false",
    "PRISMA_QUERY_ENGINE_LIBRARY": "/bin/false",
    "PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING": "1",
    # No telemetry or update check (both would try the network), no colours in the output.
    "CHECKPOINT_DISABLE": "1",
    "PRISMA_HIDE_UPDATE_MESSAGE": "1",
    "NO_COLOR": "1",
    "FORCE_COLOR": "0",
}

SCHEMA_PRISMA = """datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}
"""

PRISMA_CONFIG_TS = """import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  async adapter() {
    // allowExitOnIdle: without it node-postgres keeps idle pool clients for 10 s
    // (idleTimeoutMillis) and every successful command takes ~11 s to exit.
    return new PrismaPg({ connectionString: process.env.DATABASE_URL, allowExitOnIdle: true });
  },
});
"""


class OracleSetupError(RuntimeError):
    pass


def missing_tools() -> str | None:
    """Why the oracle cannot run here (node or npm missing), else None."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found on PATH" if missing else None


def install() -> Path:
    """The patched install's node_modules, installing it first if needed."""
    home = CACHE_ROOT / PRISMA_VERSION
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        # One installer at a time, e.g. under pytest-xdist.
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = home / ".installed.json"
        if not _installed(marker):
            _npm_install(home)
            marker.write_text(json.dumps(NPM_PACKAGES))
        _patch_adapter(home / "node_modules")
    return home / "node_modules"


def _installed(marker: Path) -> bool:
    try:
        return tuple(json.loads(marker.read_text())) == NPM_PACKAGES
    except (OSError, ValueError):
        return False


def _npm_install(home: Path) -> None:
    package_json = home / "package.json"
    if not package_json.exists():
        package_json.write_text('{"name": "rollback-bot-prisma-oracle", "private": true}\n')
    command = ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *NPM_PACKAGES]
    result = subprocess.run(
        command, cwd=home, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
    if result.returncode != 0:
        raise OracleSetupError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def _patch_adapter(node_modules: Path) -> None:
    for name in ADAPTER_FILES:
        path = node_modules / "@prisma" / "adapter-pg" / "dist" / name
        source = path.read_text()
        if PATCH_MARKER not in source:
            if source.count(PATCH_ANCHOR) != 1:
                raise OracleSetupError(f"{path}: the column-type switch changed; update the patch")
            source = source.replace(PATCH_ANCHOR, PATCH_LINES + PATCH_ANCHOR)
        if SCRIPT_MARKER not in source:
            if source.count(SCRIPT_ANCHOR) != 1:
                raise OracleSetupError(f"{path}: executeScript changed; update the patch")
            source = source.replace(SCRIPT_ANCHOR, SCRIPT_ANCHOR + SCRIPT_LINES)
        path.write_text(source)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PrismaProject:
    """A throw-away project directory: schema.prisma, prisma.config.ts, migrations."""

    def __init__(
        self, root: Path, node_modules: Path, database_url: str, transport: str = WHOLE_SCRIPT
    ):
        """``transport``: WHOLE_SCRIPT sends each migration as one simple query (the native
        engine's way), SPLIT_SCRIPT on every ``;`` (the driver adapter's own way)."""
        if transport not in (WHOLE_SCRIPT, SPLIT_SCRIPT):
            raise ValueError(transport)
        self.root = root
        self.database_url = database_url
        self.node_modules = node_modules
        self.transport = transport
        (root / "prisma" / "migrations").mkdir(parents=True, exist_ok=True)
        (root / "prisma" / "schema.prisma").write_text(SCHEMA_PRISMA)
        (root / "prisma.config.ts").write_text(PRISMA_CONFIG_TS)
        self.migrations_dir.joinpath("migration_lock.toml").write_text(
            '# Please do not edit this file manually\nprovider = "postgresql"\n'
        )
        # prisma.config.ts imports "prisma/config" and "@prisma/adapter-pg" from here.
        (root / "node_modules").symlink_to(node_modules, target_is_directory=True)

    @property
    def migrations_dir(self) -> Path:
        return self.root / "prisma" / "migrations"

    def write_migration(self, name: str, sql: str) -> Path:
        directory = self.migrations_dir / name
        directory.mkdir(exist_ok=True)
        (directory / "migration.sql").write_text(sql)
        return directory

    def _command(self, *args: str) -> tuple[list[str], dict[str, str]]:
        cli = self.node_modules / "prisma" / "build" / "index.js"
        env = {
            **os.environ,
            **CLI_ENV,
            "DATABASE_URL": self.database_url,
            TRANSPORT_VARIABLE: self.transport,
        }
        return ["node", str(cli), *args], env

    def run(self, *args: str) -> CliResult:
        command, env = self._command(*args)
        result = subprocess.run(
            command, cwd=self.root, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT
        )
        return CliResult(result.returncode, result.stdout, result.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        command, env = self._command(*args)
        return subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def deploy(self) -> CliResult:
        return self.run("migrate", "deploy")

    def status(self) -> CliResult:
        return self.run("migrate", "status")
