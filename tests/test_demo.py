"""`meshstitch demo` as `make demo` runs it: a subprocess on free ports, fed by the simulated mesh."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.ports import free_port
from tests.test_cli import ROOT, cli_env


def test_demo_serves_the_simulated_bookinfo_graph(tmp_path: object) -> None:
    port = free_port()
    env = cli_env(
        database_url=f"sqlite:///{tmp_path}/demo.db",
        host="127.0.0.1",
        http_port=str(port),
        grpc_port=str(free_port()),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--ticks", "4"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:  # the first tick is printed after startup completed
            lines.append(line)
            if line.startswith("tick 1:"):
                break
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["parts"]["poller"]["ready"] is True
        lines.extend(proc.stdout)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()
    out = "".join(lines)
    # The web view is the first place the demo points to.
    listed = [line.split() for line in out.splitlines() if "OTLP" not in line]
    urls = [words[-1] for words in listed if words and words[-1].startswith(f"{base}/")]
    assert urls and urls[0] == f"{base}/ui?service=productpage", urls
    for url in ("/graph?service=productpage", "/triage?service=reviews", "/grafana", "/docs"):
        assert f"{base}{url}" in out, url
    # L4-only parts appear once the service's own poller has scraped after a tick (every 5 s, on
    # its own clock), so the last of four ticks is judged.
    table = out.split("tick 4:", 1)[1]
    assert "bookinfo/productpage" in table and "bookinfo/reviews" in table
    assert " full " in table and " l4_only " in table, table
