"""Per-series counter state of one scrape target: increases between scrapes.

Rules (the simulator relies on them, tests/data/ztunnel/README.md):
* Δ = value - previous value of the same series (metric name + exact label text).
* A decrease is a counter reset (ztunnel restarted): Δ = the new value, never negative and
  never the old total again.
* The target's first successful scrape only records baselines: we cannot know what happened
  before we watched. A series first seen on a *later* scrape counts its whole value: ztunnel
  creates a series on first use (`Family::get_or_create`), so all of it is traffic since our
  previous scrape. (This differs from Prometheus' `increase()`, which would miss a late series'
  first value; counting it is exact for ztunnel.)
* A series missing from `forget_after` consecutive scrapes is forgotten (bounded memory); if it
  comes back it counts as new.
* NaN values are skipped (no evidence), and do not disturb the stored value.
* At most `max_series` series are tracked (memory bounded whatever a target prints). A series
  first seen while that many are tracked gets no baseline and is not counted: its increase is
  unknowable without one, and evicting another series' baseline would count that one's whole
  value again later. Each scrape's number of such series is `untracked` (reported per target);
  as tracked series are forgotten, room is made for new ones, and a series that was untracked
  starts with a baseline when it gets room (its value holds traffic we did not count; counting it
  whole would count traffic from before, too). Untracked series are remembered as hashes, as many
  as `max_series`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from app.poll.exposition import Sample

MAX_SERIES = 200_000  # app/poll/exposition.py caches as many parsed series per target


class CounterDeltas:
    def __init__(self, forget_after: int = 5, max_series: int = MAX_SERIES) -> None:
        self._last: dict[str, float] = {}
        self._missed: dict[str, int] = {}
        self._forget_after = forget_after
        self._baselined = False
        self._max_series = max_series
        self.resets = 0
        self.untracked = 0  # series of the latest scrape not tracked (past max_series)
        self._untracked_keys: set[int] = set()

    def __len__(self) -> int:
        return len(self._last)

    @property
    def baselined(self) -> bool:
        return self._baselined

    def update(self, samples: Iterable[Sample]) -> list[tuple[Sample, float]]:
        """Feed one successful scrape; returns (sample, increase) for series that increased."""
        last, first = self._last, not self._baselined
        seen: set[str] = set()
        out: list[tuple[Sample, float]] = []
        untracked = 0
        for sample in samples:
            value, key = sample.value, sample.series
            if math.isnan(value):
                seen.add(key)
                continue
            seen.add(key)
            previous = last.get(key)
            if previous is None and len(last) >= self._max_series:
                untracked += 1
                if len(self._untracked_keys) >= self._max_series:
                    self._untracked_keys.clear()
                self._untracked_keys.add(hash(key))
                continue
            last[key] = value
            if first:
                continue
            if previous is None:
                if self._untracked_keys and hash(key) in self._untracked_keys:
                    self._untracked_keys.discard(hash(key))
                    continue  # tracked from now on: this value is its baseline
                delta = value
            elif value < previous:
                self.resets += 1
                delta = value
            else:
                delta = value - previous
            if delta > 0 and math.isfinite(delta):
                out.append((sample, delta))
        self._baselined = True
        self.untracked = untracked
        if len(seen) != len(last) or self._missed:
            self._age(seen)
        return out

    def _age(self, seen: set[str]) -> None:
        missed = self._missed
        for key in list(self._last):
            if key in seen:
                missed.pop(key, None)
                continue
            count = missed.get(key, 0) + 1
            if count >= self._forget_after:
                del self._last[key]
                missed.pop(key, None)
            else:
                missed[key] = count
