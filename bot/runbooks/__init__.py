"""The runbooks, as data the engine walks (one module each)."""

from bot.engine.model import Runbook
from bot.runbooks.deploy import DEPLOY
from bot.runbooks.drill import DRILL
from bot.runbooks.pitr import CLEANUP, PITR, UNDO_SWITCH
from bot.runbooks.resolve import RESOLVE
from bot.runbooks.revert import REVERT
from bot.runbooks.sql import SQL

RUNBOOKS: dict[str, Runbook] = {
    r.name: r for r in (DRILL, RESOLVE, REVERT, DEPLOY, SQL, PITR, UNDO_SWITCH, CLEANUP)
}
