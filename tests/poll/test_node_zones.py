"""Zones from Kubernetes node topology, over a fake Kubernetes API, and their use for ztunnel
series that carry no locality labels (ztunnel before 1.26)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.correlate.identity import NodeIdentity
from app.domain import ZoneBytes
from app.poll.half_edges import to_samples
from app.poll.node_zones import node_zones, workload_zones
from app.poll.ztunnel_labels import Counts
from tests.poll.fake_kube_api import FakeKubeApi, kube_api  # noqa: F401 (fixture)
from tests.poll.test_pod_directory import k8s_pod
from tests.poll.test_pod_identity import directory_for


def k8s_node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def on(node: str, pod: dict[str, Any]) -> dict[str, Any]:
    pod["spec"]["nodeName"] = node
    return pod


NODES = [
    k8s_node("n1", {"topology.kubernetes.io/zone": "eu-west-1a"}),
    k8s_node("n2", {"failure-domain.beta.kubernetes.io/zone": "eu-west-1b"}),  # older nodes
    k8s_node("n3", {}),  # no zone label
]


def test_a_workload_has_a_zone_when_all_its_pods_run_in_one() -> None:
    zones = node_zones(NODES)
    assert zones == {"n1": "eu-west-1a", "n2": "eu-west-1b"}
    pods = [
        ("ns", "one", "n1"),
        ("ns", "one", "n1"),
        ("ns", "spread", "n1"),
        ("ns", "spread", "n2"),
        ("ns", "unlabelled", "n3"),
        ("ns", "unscheduled", ""),
    ]
    assert workload_zones(pods, zones) == {("ns", "one"): "eu-west-1a"}


async def test_the_pod_directory_lists_nodes_and_names_series_zones(
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube_api.lists["nodes"] = NODES
    kube_api.lists["pods"] = [
        on(
            "n1",
            k8s_pod(
                "productpage-v1-6b7f-abcde",
                "10.0.0.1",
                labels={"app": "productpage", "pod-template-hash": "6b7f"},
                owner=("ReplicaSet", "productpage-v1-6b7f"),
            ),
        ),
        on(
            "n2",
            k8s_pod(
                "details-v1-5d4c-fghij",
                "10.0.0.2",
                labels={"app": "details", "pod-template-hash": "5d4c"},
                owner=("ReplicaSet", "details-v1-5d4c"),
            ),
        ),
    ]
    directory = directory_for(kube_api, tmp_path, NodeIdentity())
    await directory.refresh(1000.0)
    await directory.aclose()
    assert directory.zone_of("bookinfo", "productpage-v1") == "eu-west-1a"
    assert directory.zone_of("bookinfo", "details-v1") == "eu-west-1b"
    # a series without locality labels (ztunnel < 1.26) gets its zones from the directory
    labels = {
        "reporter": "destination",
        "source_workload": "productpage-v1",
        "source_workload_namespace": "bookinfo",
        "source_canonical_service": "productpage",
        "destination_workload": "details-v1",
        "destination_workload_namespace": "bookinfo",
        "destination_canonical_service": "details",
        "destination_service": "details.bookinfo.svc.cluster.local",
        "connection_security_policy": "mutual_tls",
    }
    (sample,) = to_samples(
        [(labels, Counts(1, 1, 100, 300), 940.0)], 1000.0, NodeIdentity(), directory.zone_of
    )
    assert sample.zones == (ZoneBytes("eu-west-1a", "", "eu-west-1b", 400),)
    # a failed node listing keeps the zones known before
    kube_api.status["nodes"] = 500
    directory.node_state.next_attempt_s = 0
    directory.state.next_attempt_s = 0
    await directory.refresh(5000.0)
    await directory.aclose()
    assert directory.zone_of("bookinfo", "details-v1") == "eu-west-1b"
