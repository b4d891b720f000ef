"""The lease keeper: one thread per process that keeps this replica's leases alive and, in
the long-running bot, resumes operations nobody walks.

Every third of ``lease_seconds`` it renews each lease the walker holds (a lease it can no
longer renew was taken by another replica: the walker is told, bot/engine/walker.py) and,
once started with ``sweep=True``, resumes the active operations whose lease is free or ran
out (a replica died, or a decision taken on one replica while another was letting go).
So an operation whose replica died is resumed within ``lease_seconds`` plus a third of it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger(__name__)

REPLICA_ENV = "ROLLBACK_BOT_REPLICA"


def replica_name(kind: str = "serve") -> str:
    """This process's name as a lease owner. A replica is one process: ``$ROLLBACK_BOT_REPLICA``
    (a pod's stable name, so a restarted container resumes its own operations at once), else
    host and pid. A terminal is never a replica of the bot: its own name."""
    if kind == "serve" and os.environ.get(REPLICA_ENV):
        return os.environ[REPLICA_ENV]
    suffix = "" if kind == "serve" else f":{kind}"
    return f"{socket.gethostname()}{suffix}:{os.getpid()}"


class LeaseKeeper:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.interval = engine.config.lease_seconds / 3
        self.sweeping = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def ensure_running(self, *, sweep: bool = False) -> None:
        with self._start_lock:
            self.sweeping = self.sweeping or sweep
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
                if self.sweeping and not self.engine.walker.stopping:
                    self.sweep()
            except Exception:  # noqa: BLE001 - the keeper must outlive a state database outage
                log.exception("lease keeper: renewing or sweeping failed; retrying")

    def renew(self) -> None:
        walker, store = self.engine.walker, self.engine.store
        for op_id, lease in list(walker.leases.items()):
            if not store.renew_lease(lease, self.engine.clock(), walker.lease_seconds):
                log.warning("lease on %s lost to another replica", op_id)
                walker.lease_lost(op_id)

    def sweep(self) -> None:
        for op_id, _holder in self.engine.store.unwalked_operations(self.engine.clock()):
            if not self.engine.is_walking(op_id):
                self.engine.resume(op_id, restarted=False)
