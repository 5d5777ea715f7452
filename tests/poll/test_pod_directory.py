"""Pod IP → workload from the Kubernetes pod list (the peer.address evidence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.correlate.identity import NodeIdentity
from app.domain import Endpoint
from app.poll.pod_directory import PodDirectory, build_pod_directory, pod_endpoint
from app.poll.poller import build_poller
from app.settings import Settings
from tests.poll.test_discovery import FakeApi, api, kubeconfig  # noqa: F401  (api is a fixture)


def k8s_pod(
    name: str,
    ip: str,
    *,
    namespace: str = "bookinfo",
    labels: dict[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    phase: str = "Running",
    host_network: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    return {
        "metadata": meta,
        "spec": {"hostNetwork": host_network},
        "status": {"phase": phase, "podIP": ip},
    }


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (
            k8s_pod(
                "reviews-v2-5b8f9c7d4-x2x9z",
                "10.1.0.5",
                labels={
                    "app": "reviews",
                    "service.istio.io/canonical-name": "reviews-canonical",
                    "pod-template-hash": "5b8f9c7d4",
                },
                owner=("ReplicaSet", "reviews-v2-5b8f9c7d4"),
            ),
            ("10.1.0.5", Endpoint("bookinfo", "reviews-canonical", workload="reviews-v2")),
        ),
        (
            k8s_pod(
                "productpage-v1-6b746f74dc-abcde",
                "10.1.0.6",
                labels={"app": "productpage", "pod-template-hash": "6b746f74dc"},
                owner=("ReplicaSet", "productpage-v1-6b746f74dc"),
            ),
            ("10.1.0.6", Endpoint("bookinfo", "productpage", workload="productpage-v1")),
        ),
        (
            k8s_pod("mongodb-0", "10.1.0.7", owner=("StatefulSet", "mongodb")),
            ("10.1.0.7", Endpoint("bookinfo", "mongodb", workload="mongodb")),
        ),
        (
            k8s_pod("bare", "10.1.0.8", labels={"app.kubernetes.io/name": "tool"}),
            ("10.1.0.8", Endpoint("bookinfo", "tool", workload="bare")),
        ),
        (k8s_pod("pending", "10.1.0.9", phase="Pending"), None),
        (k8s_pod("host", "192.168.0.4", host_network=True), None),
        (
            k8s_pod(
                "waypoint-7c9f-abcde",
                "10.1.0.10",
                labels={"gateway.istio.io/managed": "istio.io-mesh-controller"},
            ),
            None,
        ),
    ],
)
def test_pod_endpoint(pod: dict[str, Any], expected: tuple[str, Endpoint] | None) -> None:
    assert pod_endpoint(pod) == expected


async def test_the_poller_refreshes_the_directory_from_the_api(
    api: FakeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    api.pods = [
        k8s_pod("productpage-v1-6b7-x", "10.1.0.6", labels={"app": "productpage"}),
        k8s_pod("ratings-v1-5c4-y", "10.1.0.11", labels={"app": "ratings"}),
    ]
    server = f"http://127.0.0.1:{api.server_address[1]}"
    settings = Settings(ztunnel_discovery="kubernetes", kubeconfig=kubeconfig(tmp_path, server))
    directory = build_pod_directory(settings)
    assert isinstance(directory, PodDirectory)
    poller = build_poller(settings, lambda samples: None, NodeIdentity(), directory=directory)
    assert poller is not None and poller.directory is directory
    try:
        await poller.poll_once()
        found = directory.lookup("10.1.0.6")
        assert found is not None and (found.namespace, found.service) == ("bookinfo", "productpage")
        assert len(directory) == 2
        assert any(path.startswith("/api/v1/pods?") for path, _ in api.seen)

        # The API going away keeps the last listing and is reported, not fatal.
        api.pods = "garbage"  # type: ignore[assignment]
        directory.state.next_attempt_s = 0.0  # due again now
        await poller.poll_once()
        assert directory.lookup("10.1.0.11") is not None
        assert not directory.state.healthy
        assert "kubernetes:pods" in poller.readiness().detail["targets"]
    finally:
        await poller.aclose()


def test_no_directory_without_kubernetes_discovery() -> None:
    assert build_pod_directory(Settings()) is None
    assert build_pod_directory(Settings(ztunnel_targets="http://127.0.0.1:1/metrics")) is None
