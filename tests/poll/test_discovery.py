"""Kubernetes discovery against a small fake API server on loopback, through a kubeconfig."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.correlate.identity import NodeIdentity
from app.poll.poller import build_poller
from app.settings import Settings
from tests.poll.fake_ztunnel import FakeZtunnel, destination, series_labels, serve, source

TOKEN = "s3cret-token"


class FakeApi(ThreadingHTTPServer):
    daemon_threads = True
    pods: list[dict[str, object]]
    waypoint_pods: list[dict[str, object]]
    seen: list[tuple[str, str]]


class Handler(BaseHTTPRequestHandler):
    server: FakeApi

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        # The API filters by label selector: waypoint pods answer the Gateway-label listing.
        items = self.server.waypoint_pods if "gateway.istio.io" in self.path else self.server.pods
        body = json.dumps({"kind": "PodList", "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi(("127.0.0.1", 0), Handler)
    server.pods, server.waypoint_pods, server.seen = [], [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def pod(ip: str, phase: str = "Running", start: str = "2020-01-01T00:00:00Z") -> dict[str, object]:
    return {
        "metadata": {"name": f"ztunnel-{ip}"},
        "status": {"phase": phase, "podIP": ip, "startTime": start},
    }


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
current-context: test
contexts: [{{name: test, context: {{cluster: c, user: u}}}}]
clusters: [{{name: c, cluster: {{server: "{server}"}}}}]
users: [{{name: u, user: {{token: {TOKEN}}}}}]
"""
    )
    return str(path)


async def test_discovers_running_ztunnel_pods_and_scrapes_them(
    api: FakeApi, tmp_path: Path
) -> None:
    fake = FakeZtunnel()
    labels = series_labels("source", **source("productpage-v1"), **destination("details-v1"))
    fake.add(labels, opened=1)
    with serve(fake) as url:
        port = int(url.split(":")[2].split("/")[0])
        api.pods = [pod("127.0.0.1"), pod("10.9.9.9", phase="Pending"), pod("", phase="Running")]
        settings = Settings(
            ztunnel_discovery="kubernetes",
            kubeconfig=kubeconfig(tmp_path, f"http://127.0.0.1:{api.server_address[1]}"),
            ztunnel_port=port,
            poll_timeout_s=2,
        )
        emitted: list[object] = []
        now = [1_000.0]
        poller = build_poller(settings, emitted.extend, NodeIdentity(), clock=lambda: now[0])
        assert poller is not None and poller.mode == "scrape"
        await poller.poll_once()
        assert api.seen[0] == (
            "/api/v1/namespaces/istio-system/pods?labelSelector=app%3Dztunnel",
            f"Bearer {TOKEN}",
        )
        fake.add(labels, opened=2)
        now[0] += 15
        (sample,) = await poller.poll_once()
        assert sample.connections_opened == 2
        detail = poller.readiness().detail
        assert set(detail["targets"]) == {
            url,
            "kubernetes:istio-system/app=ztunnel",
            "kubernetes:*/gateway.istio.io/managed=istio.io-mesh-controller",
        }
        # the API going away keeps the last known targets
        api.pods = []
        api.shutdown()
        now[0] += 15
        await poller.poll_once()
        detail = poller.readiness().detail
        assert not detail["targets"]["kubernetes:istio-system/app=ztunnel"]["healthy"]
        assert detail["targets"][url]["healthy"]
        await poller.aclose()
