"""Fixtures for the Prisma oracle tests: the patched CLI install and a project per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.oracle import prisma_cli


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "oracle: checked against the real Prisma CLI")


@pytest.fixture(scope="session")
def prisma_node_modules() -> Path:
    reason = prisma_cli.missing_tools()
    if reason:
        print(f"\nPrisma oracle skipped: {reason}")
        pytest.skip(f"Prisma oracle needs node and npm: {reason}")
    return prisma_cli.install()


@pytest.fixture
def prisma(tmp_path: Path, prisma_node_modules: Path, pg_url: str) -> prisma_cli.PrismaProject:
    """Real Prisma sending each migration whole, as its native schema engine does."""
    return prisma_cli.PrismaProject(tmp_path / "project", prisma_node_modules, pg_url)


@pytest.fixture
def prisma_split(
    tmp_path: Path, prisma_node_modules: Path, pg_url: str
) -> prisma_cli.PrismaProject:
    """Real Prisma through the driver adapter's own transport: statements one by one, so
    a migration that fails keeps the statements before the failing one."""
    return prisma_cli.PrismaProject(
        tmp_path / "project", prisma_node_modules, pg_url, transport=prisma_cli.SPLIT_SCRIPT
    )


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        yield connection
