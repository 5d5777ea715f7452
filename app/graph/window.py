"""Query windows: `window=15m` (ending now) or `from`/`to` as RFC 3339 or epoch milliseconds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_WINDOW_S = 31 * 86400


class WindowError(ValueError):
    """A window the user gave cannot be understood; the message says how to write it."""


@dataclass(frozen=True, slots=True)
class Window:
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    def bucket_range(self, bucket_s: int) -> tuple[int, int]:
        """Buckets whose start lies in [start, end): the buckets merged for this window."""
        first = int(self.start_s // bucket_s) * bucket_s
        if first < self.start_s:
            first += bucket_s
        return first, int(self.end_s)

    def observed_start(self, bucket_s: int, first_data_s: float | None) -> float:
        """Where the part of the window that could have been observed starts, the start every
        rate divides from: the first bucket merged for the window (a bucket straddling the
        start is not read) or the store's first data (meshstitch was not observing before it),
        whichever is later. A window with nothing observed in it keeps its own start."""
        first, _ = self.bucket_range(bucket_s)
        start = max(self.start_s, float(first))
        if first_data_s is not None and first_data_s > start:
            start = float(first_data_s)
        return start if start < self.end_s else self.start_s

    def shifted_back(self, seconds: float) -> Window:
        return Window(self.start_s - seconds, self.end_s - seconds)


def parse_duration_s(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise WindowError(
            f"cannot read duration {text!r}: write a number and a unit, e.g. 15m, 1h, 30s, 7d"
        )
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise WindowError(f"duration {text!r} must be positive")
    return seconds


def parse_instant_s(text: str) -> float:
    stripped = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", stripped):
        return float(stripped) / 1000.0  # epoch milliseconds, as Grafana sends them
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise WindowError(
            f"cannot read time {text!r}: use RFC 3339 (2026-11-25T10:00:00Z) or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        raise WindowError(f"time {text!r} has no timezone: add Z or an offset such as +01:00")
    return moment.timestamp()


def resolve_window(
    now_s: float,
    window: str | None = None,
    from_: str | None = None,
    to: str | None = None,
    default: str = "15m",
) -> Window:
    if window is not None and (from_ is not None or to is not None):
        raise WindowError("give either window or from/to, not both")
    if from_ is not None or to is not None:
        end = parse_instant_s(to) if to is not None else now_s
        if from_ is None:
            raise WindowError("from is required when to is given")
        start = parse_instant_s(from_)
    else:
        end = now_s
        start = end - parse_duration_s(window or default)
    if end <= start:
        raise WindowError("from must be before to")
    if end - start > MAX_WINDOW_S:
        raise WindowError(f"window longer than {MAX_WINDOW_S // 86400} days")
    return Window(start, end)
