"""The schema before a migration, built once per history and cached.

Replaying every earlier migration costs about half a millisecond per statement (parsing
most of it), which made the reverse of the last migration of an 820-migration history take
1.6 s and the verify step and the recommendation pay it again. The model of a history is
kept here, keyed by a chain of the scripts' SHA-256 (so two environments with the same
history share it, and an edited or re-ordered history is a different key); a history that
grew by one migration replays only that one on top of the cached prefix.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from pglast.parser import ParseError

from bot.sql.gc_pause import gc_paused
from bot.sql.model_replay import apply_script_statements, taint_everything
from bot.sql.parse import parse_sql
from bot.sql.schema_model import SchemaModel

CACHED_HISTORIES = 8

_cache: OrderedDict[bytes, SchemaModel] = OrderedDict()
_lock = threading.Lock()


@gc_paused
def schema_before(earlier_sql: Sequence[str] | None, default_schema: str) -> SchemaModel:
    """The model of the schema the scripts leave, in order, on an empty ``default_schema``
    (Prisma deploys only onto an empty schema or a baseline, P3005). ``None``: the history
    is not known, so anything not seen in the migration itself is UNKNOWN. The returned
    model is the caller's own to change."""
    if earlier_sql is None:
        return SchemaModel(default_schema, absent_known=False)
    keys = _chain(earlier_sql, default_schema)
    start, model = _longest_cached(keys)
    if model is None:
        model = SchemaModel(default_schema, absent_known=True)
    for position in range(start, len(earlier_sql)):
        _replay_script(model, earlier_sql[position])
    with _lock:
        _cache[keys[-1]] = model
        _cache.move_to_end(keys[-1])
        while len(_cache) > CACHED_HISTORIES:
            _cache.popitem(last=False)
    return model.fork()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _chain(scripts: Sequence[str], default_schema: str) -> list[bytes]:
    """keys[j]: the first j scripts (keys[0]: none)."""
    key = hashlib.sha256(default_schema.encode()).digest()
    keys = [key]
    for script in scripts:
        key = hashlib.sha256(key + hashlib.sha256(script.encode()).digest()).digest()
        keys.append(key)
    return keys


def _longest_cached(keys: list[bytes]) -> tuple[int, SchemaModel | None]:
    with _lock:
        for position in range(len(keys) - 1, -1, -1):
            cached = _cache.get(keys[position])
            if cached is not None:
                _cache.move_to_end(keys[position])
                return position, cached.fork()
    return 0, None


def _replay_script(model: SchemaModel, script: str) -> None:
    try:
        statements = parse_sql(script)
    except ParseError:
        # A migration the bot cannot read: whatever it did is unknown from here on.
        taint_everything(model)
        return
    apply_script_statements(model, (raw.stmt for raw in statements))
