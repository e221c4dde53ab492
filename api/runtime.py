"""Process-wide runtime settings for the long-running commands (``yima serve``, ``yima audit``).

CPython's cyclic garbage collector runs a young-generation pass every 700 container
allocations and a full pass after 100 of those. The ingest writer and the audit replay allocate
tens of thousands of short-lived dicts, tuples and states per capture while millions of
long-lived objects (cached states, parsed leaves) sit in the heap, so with the default
thresholds a quarter of their CPU time went to collections that find nothing: our data has no
reference cycles to collect. :func:`tune_gc` raises the thresholds (docs/adr/0013). It is set by
the commands that run the service or an audit, never by a library import, and it can be turned
off with ``YIMA_GC_TUNING=0``.
"""

from __future__ import annotations

import gc
import os

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS: tuple[int, int, int] = (50_000, 20, 100)
"""Young-generation allocations per pass, and passes per older-generation pass (measured in
docs/PERFORMANCE.md: the rules replay at these values costs what it costs with the collector
off, and 1.4x less CPU than at CPython's default (700, 10, 10))."""


def tune_gc(*, environ: dict[str, str] | None = None) -> bool:
    """Raise the collector's thresholds to :data:`GC_THRESHOLDS` and freeze startup objects.

    ``gc.freeze()`` moves everything allocated so far (modules, settings, registry caches)
    into a permanent generation that later full passes skip.

    Args:
        environ: Environment to read ``YIMA_GC_TUNING`` from (default ``os.environ``).

    Returns:
        True when tuned, False when ``YIMA_GC_TUNING`` is ``0``/``false``/``no``.
    """
    env = os.environ if environ is None else environ
    if env.get("YIMA_GC_TUNING", "1").strip().lower() in {"0", "false", "no"}:
        return False
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    return True
