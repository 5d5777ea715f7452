"""The window cache takes what lives out of the garbage collector's scans after each build
(app/graph/window_cache.py `_out_of_collector_view`): an object frozen by an earlier build that
has since died in a reference cycle must still be collected, or each build would pin garbage for
the life of the process."""

from __future__ import annotations

import gc
import weakref

from app.graph.window_cache import _out_of_collector_view


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_garbage_frozen_by_an_earlier_build_is_collected_by_the_next() -> None:
    node = _Node()
    alive = weakref.ref(node)
    try:
        _out_of_collector_view()  # an earlier build: `node` is frozen
        del node
        gc.collect()
        assert alive() is not None  # frozen: the collector no longer sees it
        _out_of_collector_view()  # the next build
        assert alive() is None
    finally:
        gc.unfreeze()
