"""CounterDeltas tracks at most `max_series` series; the rest are reported, never guessed."""

from __future__ import annotations

from app.poll.deltas import CounterDeltas
from app.poll.exposition import Sample


def series(i: int, value: float) -> Sample:
    name = "istio_tcp_sent_bytes_total"
    labels = {"reporter": "source", "destination_service": f"svc-{i}.default.svc.cluster.local"}
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return Sample(name, labels, value, None, f"{name}{{{text}}}")


def increases(deltas: CounterDeltas, values: dict[int, float]) -> dict[int, float]:
    found = deltas.update([series(i, v) for i, v in values.items()])
    return {int(s.labels["destination_service"][4:].split(".")[0]): d for s, d in found}


def test_series_past_the_cap_are_untracked_then_baselined_when_room_is_made() -> None:
    deltas = CounterDeltas(forget_after=1, max_series=3)
    assert increases(deltas, dict.fromkeys(range(5), 10)) == {}  # the baseline scrape
    assert len(deltas) == 3 and deltas.untracked == 2
    assert increases(deltas, dict.fromkeys(range(5), 15)) == {0: 5, 1: 5, 2: 5}
    assert deltas.untracked == 2
    # 0..2 stop; 3 and 4 are still untracked on this scrape, which forgets 0..2.
    assert increases(deltas, {3: 20, 4: 20}) == {}
    assert len(deltas) == 0 and deltas.untracked == 2
    # Room now: 3 and 4 start from a baseline (their 10 → 20 was never seen counted) ...
    assert increases(deltas, {3: 25, 4: 25}) == {}
    assert deltas.untracked == 0 and len(deltas) == 2
    # ... and count from there; a series never untracked still counts whole when first seen.
    assert increases(deltas, {3: 30, 4: 26, 9: 7}) == {3: 5, 4: 1, 9: 7}
