"""Takes docs/ui-graph.png, the README's picture of the web view, from what `make demo` serves:
the simulated bookinfo mesh (three nodes in three zones) at the demo's 10 % trace sampling, one minute of traffic in the
demo's 5 s ticks, productpage's graph with the productpage → reviews edge selected.

    .venv/bin/python docs/screenshot.py [docs/ui-graph.png]

Needs Debian's chromium (as the browser tests do); nothing is downloaded.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.demo import TICK_S, TRACE_SAMPLING  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.sim.harness import SimulatedRun, aligned_start, free_port, serve_meshstitch  # noqa: E402
from app.sim.zoned import zoned_bookinfo  # noqa: E402
from tests.ui.browser import chromium_page  # noqa: E402

TICKS = 12
EDGE = "bookinfo/productpage->bookinfo/reviews"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "ui-graph.png")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/demo.db",
            host="127.0.0.1",
            http_port=free_port(),
            grpc_port=free_port(),
            trace_sampling_percent=TRACE_SAMPLING * 100,
            flush_interval_s=3600,
        )
        with serve_meshstitch(settings) as running:
            run = SimulatedRun(
                running, zoned_bookinfo(), seed=1, tick_s=TICK_S, trace_sampling=TRACE_SAMPLING
            )
            try:
                run.run_ticks(TICKS, aligned_start(TICKS, TICK_S, settings.bucket_s))
                run.settle()
                with chromium_page() as (page, log):
                    page.set_viewport_size({"width": 1440, "height": 900})
                    page.goto(f"{running.base_url}/ui?service=productpage&refresh=0&edge={EDGE}")
                    page.wait_for_selector(f'.edge-panel[data-edge="{EDGE}"]', timeout=30_000)
                    page.screenshot(path=str(out))
                    if log.console_errors or log.page_errors:
                        raise SystemExit(f"the page logged errors: {log}")
            finally:
                run.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
