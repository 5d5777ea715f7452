"""Garbage-collector settings for a process holding large, long-lived state (serve and demo)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Fewer full collections for a process holding large, long-lived state.

    The pairing store, the aggregates and their caches are many small long-lived objects; with
    CPython's default thresholds, full collections rescan them all every few thousand spans and
    were the largest single cost of correlation (bench/correlate.py). Everything built so far
    (modules, the app) is frozen out of the scans; young collections run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
