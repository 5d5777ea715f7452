"""Zones in PromQL mode from Kubernetes node topology: a zoned bookinfo whose ztunnels print no
locality labels (ztunnel before Istio 1.26), read through a real Prometheus, with the pods and
nodes served by a fake Kubernetes API. Every zone of a caller or a server can then only come from
the pod directory's node topology, and every edge's bytes by zone path, cross-zone bytes and
detour bytes must still equal the simulator's truth (recorded call by call from where each call's
pods ran), as tests/e2e/test_accuracy_zones.py checks for direct scrape with the labels.

The test owns its poller (built by the same `build_poller` as the app, in PromQL mode, with the
app's pod directory) so it can evaluate each bucket once with an injected clock, as
app/sim/harness.py does for direct scrape; the app itself runs with `MESHSTITCH_KUBERNETES_PODS=on`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.poll.pod_directory import PodDirectory
from app.poll.poller import build_poller
from app.poll.zone_split import NODE_TOPOLOGY_SOURCE
from app.settings import Settings
from app.sim.harness import RunningMeshstitch, aligned_start, serve_meshstitch
from app.sim.kubernetes import k8s_nodes, k8s_pods
from app.sim.runner import MeshSimulator
from app.sim.topology import Topology
from app.sim.zoned import zoned_bookinfo
from tests.e2e.conftest import BUCKET_S
from tests.e2e.stamped_exposition import StampedExposition, samples_of, stamped_exposition
from tests.e2e.test_accuracy import Result, assert_perfect
from tests.e2e.test_accuracy_zones import zone_problems
from tests.poll.fake_kube_api import FakeKubeApi, kube_api  # noqa: F401 (fixture)
from tests.poll.test_discovery import kubeconfig
from tests.prometheus_server import run_prometheus

SETTLE_S = 15.0  # PromQLSource's default at poll_interval_s=15: a bucket is read 15 s after it ends


@dataclass
class PromQLResult(Result):
    directory: PodDirectory


def _snapshot(sim: MeshSimulator) -> dict[str, float]:
    """Every ztunnel's and waypoint's exposition at this instant, as one target's samples."""
    out: dict[str, float] = {}
    for name, node in sim.nodes.items():
        out.update(samples_of(f"ztunnel-{name}", node.exposition()))
    for wid, proxy in sim.waypoints.items():
        out.update(samples_of(f"waypoint-{wid}", proxy.exposition()))
    return out


def _publish_all(
    exposition: StampedExposition, snapshots: list[tuple[float, dict[str, float]]]
) -> None:
    series = {key for _, snapshot in snapshots for key in snapshot}
    for at_s, snapshot in snapshots:
        exposition.publish({key: snapshot.get(key, 0.0) for key in series}, at_s)
        exposition.wait_ingested()


async def _list_once(directory: PodDirectory, now_s: float) -> None:
    await directory.refresh(now_s)
    await directory.aclose()


def run_promql_mesh(
    settings: Settings, topology: Topology, kube: FakeKubeApi, root: Path, *, seed: int, ticks: int
) -> Iterator[PromQLResult]:
    kube.lists["nodes"] = k8s_nodes(topology)
    kube.lists["pods"] = k8s_pods(topology)
    app_settings = settings.model_copy(
        update={"kubernetes_pods": "on", "kubeconfig": kubeconfig(root, kube.url)}
    )
    with stamped_exposition() as exposition, serve_meshstitch(app_settings) as running:
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs: [{{job_name: mesh, static_configs: [{{targets: ['{exposition.target}']}}]}}]\n"
        )
        with run_prometheus(config, root) as prometheus:
            yield from _run(running, topology, exposition, prometheus, seed=seed, ticks=ticks)


def _run(
    running: RunningMeshstitch,
    topology: Topology,
    exposition: StampedExposition,
    prometheus: str,
    *,
    seed: int,
    ticks: int,
) -> Iterator[PromQLResult]:
    directory = running.app.state.directory
    assert isinstance(directory, PodDirectory)
    # The directory is listed before the spans arrive, so callers are named by pod IP
    asyncio.run(_list_once(directory, time.time()))
    sim = MeshSimulator(
        topology, seed=seed, otlp_endpoint=f"{running.settings.host}:{running.grpc_port}"
    )
    try:
        start = aligned_start(ticks, BUCKET_S, BUCKET_S)
        snapshots = [(start, _snapshot(sim))]
        for i in range(ticks):
            begin = start + i * BUCKET_S
            sim.tick(begin, begin + BUCKET_S)
            assert running.pipeline.flush(), running.pipeline.stats.last_flush_error
            snapshots.append((begin + BUCKET_S, _snapshot(sim)))
        _publish_all(exposition, snapshots)
        poll_settings = running.settings.model_copy(update={"prometheus_url": prometheus})
        clock = [start + BUCKET_S + SETTLE_S]  # the first bucket's end: nothing before it is read
        poller = build_poller(
            poll_settings,
            running.pipeline.add_l4,
            running.app.state.identity,
            clock=lambda: clock[0],
            directory=directory,
        )
        assert poller is not None and poller.mode == "promql"
        for end in range(1, ticks + 1):
            clock[0] = start + end * BUCKET_S + SETTLE_S
            assert poller.poll_once_sync(), f"no samples for the bucket ending at tick {end}"
        assert poller.source.states()[0].healthy, poller.source.states()[0].last_error
        assert running.pipeline.flush(drain_pairing=True), running.pipeline.stats.last_flush_error
        params = {"from": str(int(start * 1000)), "to": str(int((time.time() + 120) * 1000))}
        response = httpx.get(
            f"{running.base_url}/edges", params={**params, "limit": "50000"}, timeout=60
        )
        assert response.status_code == 200, response.text
        edges = response.json()["edges"]
        yield PromQLResult(sim.truth, running.base_url, params, edges, directory)
    finally:
        sim.stop()


@pytest.mark.prometheus
def test_promql_zones_from_node_topology_equal_truth(
    settings: Settings,
    kube_api: FakeKubeApi,  # noqa: F811
    tmp_path: Path,
) -> None:
    topology = zoned_bookinfo(locality_labels=False)
    for result in run_promql_mesh(settings, topology, kube_api, tmp_path, seed=5, ticks=2):
        assert_perfect("zoned bookinfo, PromQL + node topology", result.truth, result.edges)
        assert zone_problems(result.truth, result.edges, exact=True) == []
        served: dict[tuple[str, str], dict[str, Any]] = {
            (e["source"], e["target"]): e for e in result.edges
        }
        reviews = result.truth.edge("bookinfo/productpage", "bookinfo/reviews")
        assert set(reviews.zone_bytes) == {
            "zone-b|zone-a|zone-a",
            "zone-b|zone-a|zone-b",
            "zone-b|zone-a|zone-c",
        }
        assert reviews.detour_bytes > 0
        # a direct edge has no waypoint spans to name a zone: only node topology can
        direct = result.truth.edge("bookinfo/productpage", "bookinfo/details")
        zones = served[("bookinfo/productpage", "bookinfo/details")]["zones"]
        assert zones["cross_zone_bytes"] == direct.cross_zone_bytes == zones["bytes"] > 0
        # the directory the pipeline names callers with (a sidecar's or gateway's span
        # `peer.address`; a waypoint's is always Envoy's internal address) knows every pod IP
        directory = result.directory
        for service in topology.services:
            for wl in service.workloads:
                found = directory.lookup(wl.ip)
                assert found is not None and found.node_id() == service.id, (wl, found)
        cost = httpx.get(f"{result.base_url}/cost", params=result.params, timeout=30).json()
        cross = sum(e.cross_zone_bytes for e in result.truth.edges.values())
        detour = sum(e.detour_bytes for e in result.truth.edges.values())
        assert cost["cross_zone"]["cross_zone_bytes"] == cross
        assert cost["cross_zone"]["detour_bytes"] == detour > 0
        assert NODE_TOPOLOGY_SOURCE in cost["cross_zone"]["inputs"]["zones_from"]
        ready = httpx.get(f"{result.base_url}/readyz", timeout=30).json()["parts"]
        pods = ready["kubernetes_pods"]
        assert pods["enabled"] and pods["workloads_with_zone"] == len(k8s_pods(topology))
