"""The state store: the truth about every operation.

Memory is a cache. After a restart the engine and the scheduler rebuild what they were
doing from these tables. ``Store`` (sqlite.py) owns every statement on them, on SQLite (the
default) or PostgreSQL (more than one replica: postgres.py); the rules that matter are
database rules (one active operation per environment is a partial unique index, the audit
log is append-only by triggers: the migrations in migrations/); rows come back as the typed
records of records.py.
"""

from bot.store.sqlite import Store, new_operation_id
from bot.store.transactions import Refused, StoreClosed, is_postgres_url

__all__ = ["Refused", "Store", "StoreClosed", "is_postgres_url", "new_operation_id"]
