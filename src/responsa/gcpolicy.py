"""Garbage collection for a long-running server, set once start-up is over.

By the end of start-up the heap holds ~100k long-lived objects (modules,
pydantic schemas, the route table, tokenizer/model tables) that will never
become garbage. CPython's full collections walk all of them anyway: under
load that was 130-200 ms pauses and ~6% of the CPU at c=32 (issue 16's
profile). ``after_startup`` moves them to the permanent generation
(``gc.freeze``: never examined again, never freed) and raises the
thresholds, so the young generations, where a request's cyclic garbage
lives, are collected less often and the old one is walked only as it
grows. Reference counting still frees almost everything at once; the
collector only ever had to find cycles.

Only ``responsa serve`` calls it: a test process builds many apps, and
freezing one app's heap would keep its garbage forever.

``responsa_gc_pause_seconds`` (by generation) shows the pauses that remain.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from responsa.observability import metrics

THRESHOLDS = (50_000, 20, 100)
"""The young generation is collected once 50k more container objects are
alive than at its last collection (the default 700 was crossed every ~15
requests: the objects a request holds while it runs), the middle one every
20 of those, the old one every 100 middle ones (and, as always in CPython,
only once the objects waiting for it are a quarter of its size). Measured
(2,200 requests at c=32): 151 young, 14 middle and 1 full collection
(640 ms on a loaded machine) before; none after."""

_started = [0.0]
_PAUSES = [metrics.GC_PAUSE.labels(str(generation)) for generation in range(3)]


def _observe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _PAUSES[info["generation"]].observe(time.perf_counter() - _started[0])


def after_startup() -> None:
    """Freeze the start-up heap, raise the thresholds, time every collection from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)
