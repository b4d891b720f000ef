"""The browser tests' rig: `rollback-bot sandbox` as a real process and Debian's chromium
(apt package `chromium`) driven by Playwright through its own executable, never a browser
download (`playwright install` cannot download here, and CI must not depend on it).

.ci/run installs chromium when it is missing (as root, with apt-get); a machine without it
skips these tests with that reason, never silently passes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
# Flags for a headless chromium in a container / CI: no sandbox (we may be root), no GPU,
# and nothing that phones home or updates itself (without them chromium's own connections
# are refused by a closed network, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason="/usr/bin/chromium is missing: apt-get install chromium"
                        " (.ci/run does it as root)"
                    )
                )


class SandboxProcess:
    """`rollback-bot sandbox` as a real process; its URL comes from its own output."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.main", "sandbox", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.output: list[str] = []
        self._url: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith("SANDBOX_URL="):
                self._url = line.strip().removeprefix("SANDBOX_URL=")
                self._ready.set()
        self._ready.set()

    def url(self, timeout: float = 120) -> str:
        self._ready.wait(timeout)
        assert self._url, "the sandbox did not start:\n" + "".join(self.output)
        return self._url

    def migrations_dir(self) -> Path:
        """The demo project's prisma/migrations, as the sandbox printed it."""
        for line in self.output:
            if "Prisma migrations: " in line:
                return Path(line.split("Prisma migrations: ")[1].split(" (")[0])
        raise AssertionError("the sandbox did not say where its migrations are")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@pytest.fixture
def sandbox():
    process = SandboxProcess()
    yield process
    code = process.stop()
    assert code == 0, "the sandbox did not stop cleanly:\n" + "".join(process.output)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_failed = report.failed


@pytest.fixture
def page(sandbox, request):
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default, whatever page.set_default_timeout says: an approval
    # request that follows a backup, a dry run or a restore can take longer on a loaded
    # 2-core CI machine. What is asserted stays the same; only the wait is longer.
    expect.set_options(timeout=30_000)
    url = sandbox.url()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url + "?as=U_ALICE")
        yield page
        if getattr(request.node, "browser_failed", False):
            # What the page showed and what the sandbox said, for the failure's report.
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / f"FAILED-{request.node.name}.png"))
            print("".join(sandbox.output)[-4000:])
        browser.close()
