"""The cyclic garbage collector paused while the analysis builds its trees.

Parsing a migration with pglast and replaying it on the schema model allocate hundreds of
thousands of long-lived objects (AST nodes, model states) and free almost none, which is
the worst case for CPython's generational collector: its collections are triggered by
allocation counts, and each full one walks every object built so far. On the benchmark's
5,000-statement migration the collector took about a fifth of the reverse generation
(bench/reverse.py, gc.callbacks). Mercurial pauses it the same way around its bulk loads
(mercurial/util.py, ``nogc``).

Objects freed by reference counting are freed as usual; only reference cycles wait until
the collector runs again, and the pause lasts one analysis (about a second at most).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Runs ``fn`` with the cyclic collector paused, unless it already was (by a caller,
    or by another thread: the switch is global, and whoever paused it turns it back on)."""

    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused
