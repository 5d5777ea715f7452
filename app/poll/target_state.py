"""Health of one polled target (a ztunnel endpoint, Prometheus, the Kubernetes API), with an
exponential, capped back-off so a dead target costs one timeout per back-off period."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Results counted in meshstitch_poll_scrapes_total{result}.
OK, TIMEOUT, ERROR, INVALID = "ok", "timeout", "error", "invalid"


@dataclass
class TargetState:
    name: str
    interval_s: float
    max_backoff_s: float = 300.0
    healthy: bool = False
    last_error: str = ""
    last_success_s: float = 0.0
    last_attempt_s: float = 0.0
    consecutive_failures: int = 0
    next_attempt_s: float = 0.0
    results: Counter[str] = field(default_factory=Counter)
    # Series of the latest scrape not tracked: past the per-target cap (app/poll/deltas.py).
    untracked_series: int = 0

    def due(self, now_s: float) -> bool:
        return now_s >= self.next_attempt_s

    def succeeded(self, now_s: float) -> None:
        self.healthy, self.last_error = True, ""
        self.last_success_s = self.last_attempt_s = now_s
        self.consecutive_failures = 0
        self.next_attempt_s = 0.0
        self.results[OK] += 1

    def failed(self, now_s: float, result: str, error: str) -> None:
        self.healthy, self.last_error = False, error[:500]
        self.last_attempt_s = now_s
        self.consecutive_failures += 1
        backoff = self.interval_s * 2 ** (self.consecutive_failures - 1)
        self.next_attempt_s = now_s + min(backoff, max(self.max_backoff_s, self.interval_s))
        self.results[result] += 1

    def detail(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "last_error": self.last_error,
            "last_success_s": self.last_success_s or None,
            "consecutive_failures": self.consecutive_failures,
            "next_attempt_s": self.next_attempt_s or None,
            "untracked_series": self.untracked_series,
        }
