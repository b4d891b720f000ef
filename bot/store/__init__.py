"""The state store: the truth about every operation.

Memory is a cache. After a restart the engine and the scheduler rebuild what they were
doing from these tables. ``Store`` (sqlite.py) owns every statement on them; the rules
that matter are database rules (one active operation per environment is a partial unique
index, the audit log is append-only by triggers, schema.py); rows come back as the typed
records of records.py.
"""

from bot.store.sqlite import Store, new_operation_id

__all__ = ["Store", "new_operation_id"]
