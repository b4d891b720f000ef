"""serve's settle_heap: what start-up allocated is out of the cyclic collector's reach, so a
full collection during a burst of commands no longer walks it (bench/results.md)."""

from __future__ import annotations

import gc
import weakref

from bot import serving


class _Node:
    pass


def test_settle_heap_collects_garbage_then_freezes_what_is_alive():
    garbage = _Node()
    garbage.self = garbage  # a cycle: only the cyclic collector frees it
    gone = weakref.ref(garbage)
    del garbage
    kept = _Node()
    gc.unfreeze()
    try:
        serving.settle_heap()
        assert gone() is None  # collected before freezing, not frozen for ever
        assert gc.get_freeze_count() > 0
        # What is alive is in no generation the collector walks any more.
        assert not any(o is kept for g in range(3) for o in gc.get_objects(generation=g))
    finally:
        gc.unfreeze()
