"""A small fake Kubernetes API on loopback: cluster-wide pod, Service and node lists, chunked as the API
server chunks them (`limit` → a page and `metadata.continue`; the token resumes after it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.poll.test_discovery import TOKEN

KINDS = {
    "/api/v1/pods": ("PodList", "pods"),
    "/api/v1/services": ("ServiceList", "services"),
    "/api/v1/nodes": ("NodeList", "nodes"),
}


class FakeKubeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lists: dict[str, Any] = {"pods": [], "services": [], "nodes": []}
        self.status: dict[str, int] = {}  # resource → an error status to answer with
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeKubeApi

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, {"kind": "Status", "code": 401})
        if url.path not in KINDS:
            return self._answer(404, {"kind": "Status", "code": 404})
        kind, resource = KINDS[url.path]
        if resource in self.server.status:
            code = self.server.status[resource]
            return self._answer(code, {"kind": "Status", "code": code})
        items = self.server.lists[resource]
        meta: dict[str, str] = {}
        if isinstance(items, list) and "limit" in query:
            start = int(query.get("continue", "0"))
            end = start + int(query["limit"])
            if end < len(items):
                meta["continue"] = str(end)
            items = items[start:end]
        self._answer(200, {"kind": kind, "metadata": meta, "items": items})

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApi]:
    server = FakeKubeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def k8s_service(
    name: str, selector: dict[str, str] | None, *, namespace: str = "bookinfo"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "ClusterIP", "ports": [{"port": 80}]}
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
