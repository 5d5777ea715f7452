"""A real Prometheus from the Debian package on a free loopback port, scraping what a test
serves; and the instant queries tests use to wait until it has seen enough scrapes."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import skip_or_fail
from tests.ports import free_port


def _binary() -> str:
    """The prometheus binary; skips the test (fails it under CI=true) when it is missing."""
    binary = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if binary is None:
        skip_or_fail("the Debian prometheus package is not installed (.ci/install-prometheus)")
    assert binary is not None
    return binary


@contextmanager
def run_prometheus(config: str, root: Path) -> Iterator[str]:
    """Prometheus with `config` (YAML text), its TSDB under `root`: yields its base URL and
    stops it afterwards."""
    binary = _binary()
    (root / "prometheus.yml").write_text(config)
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def instant(base: str, query: str) -> float:
    try:
        body = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return math.nan
    result = body.get("data", {}).get("result") or []
    return float(result[0]["value"][1]) if result else math.nan


def wait_for(base: str, query: str, want: float, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if instant(base, query) >= want:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus never answered {query} >= {want}")
