"""The runbooks, as data the engine walks (one module each)."""

from bot.engine.model import Runbook
from bot.runbooks.drill import DRILL

RUNBOOKS: dict[str, Runbook] = {r.name: r for r in (DRILL,)}
