"""The pod directory teaching node identity from the cluster, over a fake Kubernetes API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.correlate.identity import NodeIdentity
from app.poll.pod_directory import APP, GATEWAY, WAYPOINT, PodDirectory, build_pod_directory, role
from app.poll.poller import build_poller
from app.settings import Settings
from tests.poll.fake_kube_api import FakeKubeApi, k8s_service, kube_api  # noqa: F401 (fixture)
from tests.poll.test_discovery import kubeconfig
from tests.poll.test_pod_directory import k8s_pod

# The pod labels of a waypoint Deployment as Istio generates it for
# `istioctl waypoint apply --name reviews-l7` (istio-discovery files/waypoint.yaml).
WAYPOINT_LABELS = {
    "service.istio.io/canonical-name": "reviews-l7",
    "service.istio.io/canonical-revision": "latest",
    "gateway.networking.k8s.io/gateway-name": "reviews-l7",
    "gateway.networking.k8s.io/gateway-class-name": "istio-waypoint",
    "gateway.istio.io/managed": "istio.io-mesh-controller",
    "pod-template-hash": "7c9f5d",
}
# ... and of a Gateway of class `istio` (files/kube-gateway.yaml).
INGRESS_LABELS = {
    "service.istio.io/canonical-name": "public-istio",
    "gateway.networking.k8s.io/gateway-name": "public",
    "gateway.networking.k8s.io/gateway-class-name": "istio",
    "gateway.istio.io/managed": "istio.io-gateway-controller",
    "pod-template-hash": "5d4c3b",
}


def directory_for(api: FakeKubeApi, tmp_path: Path, identity: NodeIdentity) -> PodDirectory:
    settings = Settings(ztunnel_discovery="kubernetes", kubeconfig=kubeconfig(tmp_path, api.url))
    directory = build_pod_directory(settings, identity=identity)
    assert directory is not None
    return directory


def redis_pods() -> list[dict[str, Any]]:
    return [
        k8s_pod(
            f"myrel-redis-master-{i}",
            f"10.2.0.{i + 1}",
            namespace="db",
            labels={"app": "redis", "app.kubernetes.io/instance": "myrel"},
            owner=("StatefulSet", "myrel-redis-master"),
        )
        for i in range(2)
    ]


async def test_a_service_and_its_pods_name_the_canonical_service(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    # More pods than one page holds: the listing follows `continue`.
    filler = [
        k8s_pod(f"job-{i}", f"10.9.{i // 250}.{i % 250}", namespace="batch") for i in range(1100)
    ]
    kube_api.lists["pods"] = [*filler, *redis_pods()]
    kube_api.lists["services"] = [
        k8s_service(
            "myrel-redis-master",
            {"app": "redis", "app.kubernetes.io/instance": "myrel"},
            namespace="db",
        ),
        k8s_service("kubernetes", None, namespace="default"),
    ]
    identity = NodeIdentity()
    directory = directory_for(kube_api, tmp_path, identity)
    try:
        await directory.refresh(1_000.0)
    finally:
        await directory.aclose()
    assert identity.resolve("db", "myrel-redis-master") == "redis"  # the Service
    assert identity.resolve("db", "myrel-redis-master-0") == "redis"  # a pod name
    assert identity.resolve("db", "10.2.0.2") == "redis"  # a pod IP
    assert identity.resolve("default", "kubernetes") == "kubernetes"  # no selector: no alias
    assert len(directory) == 1102
    assert any("continue=" in path for path in kube_api.seen if path.startswith("/api/v1/pods"))
    assert all(state.healthy for state in directory.states)
    # Workload and Service aliases are stored; pod names and IPs come and go and are not.
    stored = {alias.name for alias in identity.drain_new() if alias.namespace == "db"}
    assert stored == {"myrel-redis-master"}


async def test_the_canonical_name_label_beats_app(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube_api.lists["pods"] = [
        k8s_pod(
            "reviews-v2-5b8f9c7d4-x2x9z",
            "10.1.0.5",
            labels={
                "app": "reviews",
                "service.istio.io/canonical-name": "reviews-canonical",
                "pod-template-hash": "5b8f9c7d4",
            },
            owner=("ReplicaSet", "reviews-v2-5b8f9c7d4"),
        )
    ]
    kube_api.lists["services"] = [k8s_service("reviews", {"app": "reviews"})]
    identity = NodeIdentity()
    directory = directory_for(kube_api, tmp_path, identity)
    try:
        await directory.refresh(1_000.0)
    finally:
        await directory.aclose()
    for name in ("reviews", "reviews-v2", "reviews-v2-5b8f9c7d4-x2x9z", "10.1.0.5"):
        assert identity.resolve("bookinfo", name) == "reviews-canonical", name


async def test_waypoints_and_gateways_are_known_by_their_labels_not_their_names(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube_api.lists["pods"] = [
        k8s_pod(
            "reviews-l7-7c9f5d-abcde",
            "10.1.0.20",
            labels=WAYPOINT_LABELS,
            owner=("ReplicaSet", "reviews-l7-7c9f5d"),
        ),
        k8s_pod(
            "waypoint-ui-6c5d4-fghij",
            "10.1.0.21",
            labels={"app": "waypoint-ui", "pod-template-hash": "6c5d4"},
            owner=("ReplicaSet", "waypoint-ui-6c5d4"),
        ),
        k8s_pod(
            "public-istio-5d4c3b-klmno",
            "10.1.0.22",
            labels=INGRESS_LABELS,
            owner=("ReplicaSet", "public-istio-5d4c3b"),
        ),
        k8s_pod(
            "istio-ingressgateway-0",
            "10.3.0.1",
            namespace="istio-system",
            labels={"app": "istio-ingressgateway", "istio": "ingressgateway"},
        ),
    ]
    # The waypoint's own Service selects only waypoint pods: no alias from it.
    kube_api.lists["services"] = [
        k8s_service("reviews-l7", {"gateway.networking.k8s.io/gateway-name": "reviews-l7"})
    ]
    identity = NodeIdentity()
    directory = directory_for(kube_api, tmp_path, identity)
    try:
        await directory.refresh(1_000.0)
    finally:
        await directory.aclose()
    assert identity.is_waypoint("bookinfo", "reviews-l7")
    assert directory.lookup("10.1.0.20") is None  # never the caller a waypoint span looks for
    assert not identity.is_waypoint("bookinfo", "waypoint-ui")
    assert directory.lookup("10.1.0.21") is not None
    assert identity.is_gateway("bookinfo", "public-istio")
    assert directory.lookup("10.1.0.22") is not None  # a gateway does call services
    assert identity.is_gateway("istio-system", "istio-ingressgateway")
    assert not identity.is_gateway("bookinfo", "waypoint-ui")
    assert identity.resolve("bookinfo", "10.1.0.20") == "10.1.0.20"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (WAYPOINT_LABELS, WAYPOINT),
        ({"gateway.istio.io/managed": "istio.io-mesh-controller"}, WAYPOINT),
        ({"gateway.networking.k8s.io/gateway-class-name": "istio-waypoint"}, WAYPOINT),
        ({"gateway.istio.io/managed": "istio.io-agentgateway-waypoint-controller"}, WAYPOINT),
        (INGRESS_LABELS, GATEWAY),
        ({"gateway.networking.k8s.io/gateway-class-name": "istio-east-west"}, GATEWAY),
        ({"istio": "ingressgateway"}, GATEWAY),
        ({"istio": "egressgateway"}, GATEWAY),
        ({"istio": "pilot", "app": "istiod"}, APP),
        ({"app": "waypoint"}, APP),
        ({}, APP),
    ],
)
def test_role(labels: dict[str, str], expected: str) -> None:
    assert role(labels) == expected


async def test_a_failed_service_listing_keeps_what_was_learned(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube_api.lists["pods"] = redis_pods()
    kube_api.lists["services"] = [
        k8s_service("myrel-redis-master", {"app": "redis"}, namespace="db")
    ]
    identity = NodeIdentity()
    settings = Settings(
        ztunnel_discovery="kubernetes", kubeconfig=kubeconfig(tmp_path, kube_api.url)
    )
    directory = build_pod_directory(settings, identity=identity)
    assert directory is not None
    poller = build_poller(settings, lambda samples: None, identity, directory=directory)
    assert poller is not None
    try:
        await poller.poll_once()
        assert identity.resolve("db", "myrel-redis-master") == "redis"

        # RBAC without `list services` (or the API away): reported on its own state, the pods
        # still refresh, and nothing learned is forgotten.
        kube_api.status["services"] = 403
        kube_api.lists["pods"] = [
            *redis_pods(),
            k8s_pod("cache-0", "10.2.0.9", namespace="db", labels={"app": "cache"}),
        ]
        directory.state.next_attempt_s = directory.states[1].next_attempt_s = 0.0
        await poller.poll_once()
        pods_state, services_state = directory.states
        assert pods_state.healthy and not services_state.healthy
        assert "403" in services_state.last_error
        assert identity.resolve("db", "cache-0") == "cache"
        assert identity.resolve("db", "myrel-redis-master") == "redis"

        # A failed pod listing keeps the IP map and every alias too.
        kube_api.status["pods"] = 500
        directory.state.next_attempt_s = 0.0
        await poller.poll_once()
        assert not directory.state.healthy
        assert directory.lookup("10.2.0.9") is not None
        assert identity.resolve("db", "10.2.0.9") == "cache"
    finally:
        await poller.aclose()


async def test_services_are_listed_only_for_identity(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube_api.lists["pods"] = redis_pods()
    settings = Settings(
        ztunnel_discovery="kubernetes", kubeconfig=kubeconfig(tmp_path, kube_api.url)
    )
    directory = build_pod_directory(settings)
    assert directory is not None
    try:
        await directory.refresh(1_000.0)
    finally:
        await directory.aclose()
    assert len(directory) == 2 and [s.name for s in directory.states] == ["kubernetes:pods"]
    assert not any(path.startswith("/api/v1/services") for path in kube_api.seen)
