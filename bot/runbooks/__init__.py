"""The runbooks, as data the engine walks: one module or package per runbook option."""

from bot.engine.model import Runbook
from bot.runbooks.deploy import DEPLOY
from bot.runbooks.drill import DRILL
from bot.runbooks.pitr.cleanup import CLEANUP
from bot.runbooks.pitr.steps import PITR
from bot.runbooks.pitr.undo_switch import UNDO_SWITCH
from bot.runbooks.resolve.steps import RESOLVE
from bot.runbooks.retention import RETENTION
from bot.runbooks.revert.steps import REVERT
from bot.runbooks.sql import SQL

RUNBOOKS: dict[str, Runbook] = {
    r.name: r for r in (DRILL, RESOLVE, REVERT, DEPLOY, SQL, PITR, UNDO_SWITCH, CLEANUP, RETENTION)
}
