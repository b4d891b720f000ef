"""What the numbers were measured on: CPU, cores, RAM, Python, PostgreSQL, Node."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _node() -> str:
    if shutil.which("node") is None:
        return "not installed (Prisma baseline skipped)"
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def describe(postgres_version: str | None) -> dict[str, str]:
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _ram_gib(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "PostgreSQL": postgres_version or "not started",
        "Node": _node(),
    }
