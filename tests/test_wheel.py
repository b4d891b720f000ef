"""The package as it is installed, not as it runs from this checkout: a wheel built (offline,
as the Dockerfile's `pip install .` builds it) from exactly what the Dockerfile copies holds
every file the runtime code reads, and every module it holds imports only what the wheel's
own dependencies install (the image and `pip install rollback-bot` have no dev extras).

No fresh virtualenv is installed (slow, and needs PyPI): instead the dependency closure is
read from the installed distributions' metadata, and the unpacked wheel is imported by a
Python in which every other installed distribution is made unimportable."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_deploy_files import stages

ROOT = Path(__file__).parents[1]
OWN = {"bot", "commands", "handlers"}
# The sandbox (`rollback-bot sandbox`) may use its extra; nothing else may.
SANDBOX = "bot/sandbox/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, unpacked. Built from the Dockerfile's build-stage COPY sources only."""
    backend = metadata.version("setuptools")
    if int(backend.split(".")[0]) < 77:  # pyproject's build-system and dev extra ask for 77
        pytest.fail(
            f'setuptools {backend} cannot build this package offline (license = "MIT" needs'
            ' 77): reinstall the dev extra, pip install -e ".[dev]"'
        )
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for keyword, rest in stages()[0]:
        if keyword == "COPY":
            *sources, _ = rest.split()
            for name in sources:
                path = ROOT / name
                if path.is_dir():
                    shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("*.pyc"))
                else:
                    shutil.copy(path, source / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-q", "-w", str(base / "dist")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    [built] = (base / "dist").glob("rollback_bot-*.whl")
    unpacked = base / "unpacked"
    with zipfile.ZipFile(built) as archive:
        archive.extractall(unpacked)
    return unpacked


def runtime_modules(wheel: Path) -> dict[str, ast.Module]:
    return {
        path.relative_to(wheel).as_posix(): ast.parse(path.read_text())
        for top in OWN
        for path in (wheel / top).rglob("*.py")
    }


def requires(wheel: Path, extra: str = "") -> list[Requirement]:
    """The wheel's Requires-Dist for ``extra`` ("": what a plain install brings)."""
    [info] = wheel.glob("rollback_bot-*.dist-info")
    message = Parser().parsestr((info / "METADATA").read_text())
    found = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    return [r for r in found if r.marker is None or r.marker.evaluate({"extra": extra})]


def closure(roots: list[Requirement]) -> set[str]:
    """Every distribution installing ``roots`` brings, by the installed ones' metadata."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # not for this platform: nothing of it can be imported either
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = {""} | requirement.extras
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return {name for name, _ in seen}


def distributions_of(top_level: str) -> set[str]:
    return {canonicalize_name(d) for d in metadata.packages_distributions().get(top_level, [])}


def imported_top_levels(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OWN - {"__future__"}


def test_the_wheel_ships_manifest_yml_identical_to_the_top_level_one(wheel):
    shipped = wheel / "bot" / "manifest.yml"
    assert shipped.is_file(), "bot/manifest.yml is not in the wheel (package-data)"
    assert shipped.read_bytes() == (ROOT / "manifest.yml").read_bytes(), (
        "bot/manifest.yml differs from manifest.yml: copy the top-level one over it"
    )
    assert yaml.safe_load(shipped.read_text())["oauth_config"]["scopes"]["bot"]


def test_every_data_file_of_the_packages_is_in_the_wheel(wheel):
    for top in OWN:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix not in {".py", ".pyc"}:
                relative = path.relative_to(ROOT)
                assert (wheel / relative).is_file(), f"{relative} is not in the wheel"


def test_runtime_code_reads_its_files_through_the_package_not_the_checkout(wheel):
    """``__file__`` climbing out of the package finds nothing once installed; every
    ``files("pkg").joinpath("name")`` the code reads must be in the wheel."""
    read = 0
    for name, tree in runtime_modules(wheel).items():
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Name) and node.id == "__file__"), (
                f"{name}:{node.lineno} reads a path from __file__: use importlib.resources"
            )
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "joinpath"
                and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, "id", None) == "files"
            ):
                package = node.func.value.args[0]
                if isinstance(package, ast.Constant) and isinstance(node.args[0], ast.Constant):
                    path = Path(*package.value.split("."), node.args[0].value)
                    assert (wheel / path).is_file(), f"{name} reads {path}: not in the wheel"
                    read += 1
    assert read >= 2  # bot/manifest.yml and bot/sql/volatile_builtins.txt at least


def test_every_import_is_installed_by_the_declared_dependencies(wheel):
    plain = closure(requires(wheel))
    sandbox = closure(requires(wheel) + requires(wheel, "sandbox"))
    undeclared = []
    for name, tree in runtime_modules(wheel).items():
        allowed = sandbox if name.startswith(SANDBOX) else plain
        for top in imported_top_levels(tree):
            if not distributions_of(top) & allowed:
                undeclared.append(f"{name} imports {top} ({sorted(distributions_of(top))})")
    assert not undeclared, "not in [project] dependencies:\n" + "\n".join(undeclared)


_IMPORT_ALL = """
import importlib, importlib.abc, json, sys
wheel, blocked, modules = sys.argv[1], set(json.loads(sys.argv[2])), json.loads(sys.argv[3])

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.path.insert(0, wheel)
for module in modules:
    importlib.import_module(module)
import bot, bot.doctor
assert bot.__file__.startswith(wheel), bot.__file__
print(json.dumps(sorted(bot.doctor.manifest_scopes())))
"""


def test_the_installed_package_imports_and_reads_its_manifest_without_dev_extras(wheel):
    """Every module but the sandbox's, imported from the wheel in a Python where only the
    plain install's distributions can be imported (as in the image)."""
    plain = closure(requires(wheel))
    blocked = {
        top
        for top, dists in metadata.packages_distributions().items()
        if top not in OWN and not {canonicalize_name(d) for d in dists} & plain
    }
    assert {"moto", "pytest"} <= blocked  # dev-only: the blocking is on
    modules = sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in runtime_modules(wheel)
        if not name.startswith(SANDBOX)
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", _IMPORT_ALL, str(wheel), json.dumps(sorted(blocked))]
        + [json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=wheel.parent,
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert json.loads(result.stdout) == sorted(manifest["oauth_config"]["scopes"]["bot"])
