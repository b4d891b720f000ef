"""Crash points for the crash-and-resume harness (tests/crash/).

When the environment variable ROLLBACK_BOT_CRASH_AT names a point (for example
"drill:slow_step:started"), the process kills itself with SIGKILL there: no cleanup, no
flush, exactly like a machine that dies. Unset (always, in production) it does nothing.
The harness restarts the bot and checks that the operation resumes or stops safely.
"""

from __future__ import annotations

import os
import signal

ENV = "ROLLBACK_BOT_CRASH_AT"
# With two replicas both armed, only the first to reach the point dies (it creates this
# file); the other then resumes the operation (tests/crash/test_replicas.py).
ONCE_ENV = "ROLLBACK_BOT_CRASH_ONCE"


def crash_point(runbook: str, step_id: str, moment: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and wanted == f"{runbook}:{step_id}:{moment}":
        once = os.environ.get(ONCE_ENV)
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)
