"""MESHSTITCH_KUBERNETES_PODS: when the pod directory runs (direct scrape as before; PromQL mode
with Kubernetes access), and the PromQL poller using it as the scraping one does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.correlate.identity import NodeIdentity
from app.main import create_app
from app.poll.kube_access import in_cluster_available
from app.poll.pod_directory import (
    DirectoryChoice,
    PodDirectory,
    build_pod_directory,
    directory_choice,
    directory_state,
)
from app.poll.poller import build_poller
from app.poll.promql import PromQLSource
from app.settings import Settings
from tests.poll.fake_kube_api import FakeKubeApi, kube_api  # noqa: F401 (fixture)
from tests.poll.test_discovery import kubeconfig
from tests.poll.test_node_zones import NODES, on
from tests.poll.test_pod_directory import k8s_pod
from tests.ports import free_port

PROM = "http://127.0.0.1:9"
KUBECONFIG = "/nonexistent/kubeconfig"


@pytest.mark.parametrize(
    ("settings", "in_cluster", "enabled"),
    [
        # direct scrape: exactly as before the setting existed
        ({}, True, False),
        ({"ztunnel_discovery": "kubernetes"}, False, True),
        ({"ztunnel_targets": "http://127.0.0.1:1/metrics"}, True, False),
        ({"ztunnel_targets": "http://127.0.0.1:1/metrics", "kubeconfig": KUBECONFIG}, True, False),
        # PromQL mode: with Kubernetes access, whatever ztunnel_discovery says
        ({"prometheus_url": PROM}, False, False),
        ({"prometheus_url": PROM}, True, True),
        ({"prometheus_url": PROM, "kubeconfig": KUBECONFIG}, False, True),
        ({"prometheus_url": PROM, "ztunnel_discovery": "kubernetes"}, False, False),
        ({"prometheus_url": PROM, "ztunnel_discovery": "kubernetes"}, True, True),
        # explicit
        ({"prometheus_url": PROM, "kubernetes_pods": "off"}, True, False),
        ({"ztunnel_discovery": "kubernetes", "kubernetes_pods": "off"}, True, False),
        ({"prometheus_url": PROM, "kubernetes_pods": "on"}, False, True),
        ({"ztunnel_targets": "http://127.0.0.1:1/metrics", "kubernetes_pods": "on"}, False, True),
    ],
)
def test_when_the_pod_directory_runs(
    settings: dict[str, Any], in_cluster: bool, enabled: bool
) -> None:
    choice = directory_choice(Settings(**settings), in_cluster=lambda: in_cluster)
    assert choice.enabled is enabled, choice.reason
    assert choice.reason


def test_in_cluster_needs_the_service_host_and_a_mounted_token(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
    assert not in_cluster_available(env, tmp_path)  # automountServiceAccountToken: false
    (tmp_path / "token").write_text("t")
    assert in_cluster_available(env, tmp_path)
    assert not in_cluster_available({}, tmp_path)


def test_no_directory_when_the_choice_says_off() -> None:
    settings = Settings(prometheus_url=PROM, kubeconfig=KUBECONFIG)
    assert build_pod_directory(settings, choice=DirectoryChoice(False, "off")) is None
    state = directory_state(settings, DirectoryChoice(False, "why not"), None)
    assert state.ready and state.detail == {
        "setting": "auto",
        "enabled": False,
        "reason": "why not",
    }


async def test_the_promql_poller_refreshes_the_directory_and_zones_series_from_it(
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
        )
    ]
    # Prometheus is down (nothing listens): the directory is refreshed and reported all the same.
    settings = Settings(
        prometheus_url=f"http://127.0.0.1:{free_port()}",
        kubeconfig=kubeconfig(tmp_path, kube_api.url),
        poll_timeout_s=2,
    )
    choice = directory_choice(settings)
    directory = build_pod_directory(settings, identity=NodeIdentity(), choice=choice)
    assert isinstance(directory, PodDirectory)
    poller = build_poller(settings, lambda samples: None, NodeIdentity(), directory=directory)
    assert poller is not None and poller.mode == "promql" and poller.directory is directory
    source = poller.source
    assert isinstance(source, PromQLSource) and source.zones == directory.zone_of
    try:
        await poller.poll_once()
    finally:
        await poller.aclose()
    assert directory.zone_of("bookinfo", "productpage-v1") == "eu-west-1a"
    found = directory.lookup("10.0.0.1")
    assert found is not None and found.service == "productpage"
    targets = poller.readiness().detail["targets"]
    assert targets["kubernetes:pods"]["healthy"] and targets["kubernetes:services"]["healthy"]
    assert not targets[settings.prometheus_url]["healthy"]
    state = directory_state(settings, choice, directory)
    assert state.detail["enabled"] and "kubeconfig" in state.detail["reason"]
    assert (state.detail["pod_ips"], state.detail["workloads_with_zone"]) == (1, 1)
    assert state.detail["nodes"]["nodes_with_zone"] == 2 and state.detail["nodes"]["healthy"]


@pytest.mark.parametrize(("pods", "enabled"), [("auto", True), ("off", False)])
def test_the_app_in_promql_mode_wires_the_directory_to_the_poller_and_readyz(
    tmp_path: Path, pods: str, enabled: bool
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'meshstitch.db'}",
        prometheus_url=f"http://127.0.0.1:{free_port()}",
        kubeconfig=kubeconfig(tmp_path, "http://127.0.0.1:9"),
        kubernetes_pods=pods,
    )
    app = create_app(settings)  # no lifespan: nothing is polled or listed here
    directory, poller = app.state.directory, app.state.poller
    assert poller is not None and poller.mode == "promql"
    assert (directory is not None) is enabled and poller.directory is directory
    _, parts = app.state.readiness.report()
    assert parts["kubernetes_pods"]["ready"] and parts["kubernetes_pods"]["enabled"] is enabled
    assert ("kubernetes:pods" in poller.readiness().detail["targets"]) is enabled
