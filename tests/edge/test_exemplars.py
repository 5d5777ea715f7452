"""Exemplars: the aggregator's streaming keeper keeps exactly what `top_exemplars` picks from all
requests, whatever their order."""

from __future__ import annotations

import random

from app.edge.exemplars import (
    EXEMPLARS_PER_KIND,
    SLOWEST,
    Exemplar,
    Offer,
    floor_ms,
    keep_best,
    kept_exemplars,
    top_exemplars,
)


def test_keep_best_streams_to_the_top_exemplars_of_all_requests() -> None:
    rng = random.Random(5)
    for _ in range(500):
        traces = [rng.randbytes(16) for _ in range(rng.randint(1, 8))]
        requests = [
            (rng.choice([1.0, 2.0, 5.0, rng.random() * 10]), rng.choice(traces), rng.randint(0, 9))
            for _ in range(rng.randint(1, 30))
        ]
        kept: list[Offer] = []
        floor = -1.0
        for duration, trace, end in requests:
            floor = keep_best(kept, (-duration, trace, end, "200"))
            assert floor == floor_ms(kept)
        expected = top_exemplars(
            Exemplar(SLOWEST, trace.hex(), duration, end, "200")
            for duration, trace, end in requests
        )
        assert kept_exemplars(SLOWEST, kept) == expected
        assert len(kept) <= EXEMPLARS_PER_KIND
        if len(kept) == EXEMPLARS_PER_KIND:
            assert floor == min(e.duration_ms for e in expected)
        else:
            assert floor == -1.0
