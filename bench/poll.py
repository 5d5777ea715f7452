"""Parse an 8,000-series ztunnel exposition: meshstitch's parser vs prometheus_client.

Run: .venv/bin/python -m bench.poll   (from the repository root)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from app.poll.exposition import ExpositionParser
from tests.poll.fake_ztunnel import synthetic_exposition

SERIES = 8_000


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    text = synthetic_exposition(SERIES)
    changed = text.replace("} 1", "} 2")  # same series, new values: a typical next scrape
    # A series added at the top shifts every line off the remembered layout: the series cache
    # (parsed labels by series text) is what keeps this from costing a first parse.
    shifted = 'istio_build{component="ztunnel",tag="1.29.0"} 1\n' + text
    parser = ExpositionParser()
    first = best_ms(lambda: ExpositionParser().parse(text), 3)
    parser.parse(text)
    steady = best_ms(lambda: parser.parse(text), 20)
    steady_changed = best_ms(lambda: (parser.parse(changed), parser.parse(text)), 10) / 2
    steady_shifted = best_ms(lambda: (parser.parse(shifted), parser.parse(text)), 5) / 2
    reference = best_ms(lambda: [list(f.samples) for f in text_string_to_metric_families(text)], 3)
    n = len(parser.parse(text))
    print(f"{n} samples, {len(text) / 1e6:.1f} MB exposition")
    print(f"{'parser':<34}{'ms':>10}{'vs prometheus_client':>24}")
    for name, ms in [
        ("prometheus_client", reference),
        ("meshstitch, first parse", first),
        ("meshstitch, steady (same text)", steady),
        ("meshstitch, steady (new values)", steady_changed),
        ("meshstitch, steady (layout shifted)", steady_shifted),
    ]:
        print(f"{name:<34}{ms:>10.1f}{reference / ms:>23.0f}x")
    print("rerun: .venv/bin/python -m bench.poll")


if __name__ == "__main__":
    main()
