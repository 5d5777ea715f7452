"""What an Envoy histogram prints, value by value, as Istio's stats filter fills it.

From the sources (the product's reading of these numbers is app/edge/latency_rule.py):

* istio/proxy `source/extensions/filters/http/istio_stats/istio_stats.cc` records
  `istio_request_duration_milliseconds` as `absl::FromChrono(duration) / absl::Milliseconds(1)`,
  an int64 division: whole milliseconds, truncated. `istio_request_bytes` /
  `istio_response_bytes` record the downstream wire bytes (integers).
* Envoy `source/common/stats/histogram_impl.cc` (`HistogramStatisticsImpl`) keeps each value in
  a libcircllhist bin (two significant digits: width 0.1 for 1 to 9.9, 1 for 10 to 99, 10 for 100 to 999,
  …; 0 has its own bin) and prints, per supported bucket `le`, `hist_approx_count_below(h, le)`:
  the values whose bin lies **entirely at or below** `le`. So a whole-ms value v counts in
  `le` iff its bin's upper edge ≤ le — for Istio's bounds, iff v < le (0 counts in every bucket).
  `_sum` is `hist_approx_sum`: each value taken at its bin's midpoint, so sums are approximate.
* The default supported buckets (`HistogramSettingsImpl::defaultBuckets`), which Istio keeps for
  these three families: below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_BUCKETS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
    1800000, 3600000,
)  # fmt: skip
NS_PER_MS = 1_000_000


def recorded_ms(duration_ns: int) -> int:
    """The whole milliseconds Istio records for a request of `duration_ns`."""
    return max(0, duration_ns) // NS_PER_MS


def bin_of(value: int) -> tuple[float, float]:
    """(lower edge, width) of the circllhist bin holding a non-negative integer value."""
    if value <= 0:
        return 0.0, 0.0
    digits = len(str(value))
    if digits == 1:
        return float(value), 0.1
    width = 10 ** (digits - 2)
    return float(value // width * width), float(width)


@dataclass(slots=True)
class EnvoyHistogram:
    """One series' histogram: values kept per bin, printed as Envoy prints them."""

    bins: dict[tuple[float, float], int] = field(default_factory=dict)
    count: int = 0

    def record(self, value: int, n: int = 1) -> None:
        key = bin_of(value)
        self.bins[key] = self.bins.get(key, 0) + n
        self.count += n

    def cumulative(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> list[int]:
        """`hist_approx_count_below` for each bucket bound."""
        return [
            sum(n for (lower, width), n in self.bins.items() if lower + width <= le)
            for le in buckets
        ]

    @property
    def approx_sum(self) -> float:
        return sum((lower + width / 2) * n for (lower, width), n in self.bins.items())

    def lines(self, family: str, labels: str) -> list[str]:
        """The exposition lines of this series (`labels`: its label text without braces)."""
        out = [
            f'{family}_bucket{{{labels},le="{format_value(le)}"}} {n}'
            for le, n in zip(DEFAULT_BUCKETS, self.cumulative(), strict=True)
        ]
        out.append(f'{family}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{family}_sum{{{labels}}} {format_value(self.approx_sum)}")
        out.append(f"{family}_count{{{labels}}} {self.count}")
        return out


def format_value(value: float) -> str:
    """Envoy's Prometheus output prints histogram bounds and sums with `%.32g`."""
    return f"{value:.32g}"
