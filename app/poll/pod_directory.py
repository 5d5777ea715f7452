"""Pod IP → workload, from the Kubernetes pod list: the `peer.address` evidence of DESIGN.md.

A waypoint span whose caller is not instrumented carries the caller's pod IP in `peer.address`
(HBONE keeps the original source address). With this directory the correlator names the caller
as the ztunnel metrics do, so the L7 and L4 layers meet on the same node ids:
- service: label `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`,
  else the workload name (Istio's canonical-service rule);
- workload: the owning Deployment (ReplicaSet name less its `pod-template-hash`), StatefulSet,
  DaemonSet or Job, else the pod name (what ztunnel reports as `*_workload`).
Pods on the host network share the node's IP and are left out, as are waypoint pods (they are
never the caller a waypoint span is looking for). Needs cluster-wide `list pods` (deploy/ RBAC).
"""

from __future__ import annotations

import threading
from typing import Any

from app.domain import Endpoint
from app.poll.kube_access import KubeAccess, access_from_settings
from app.poll.pod_list import PodListClient
from app.poll.target_state import TargetState
from app.settings import Settings

WAYPOINT_LABEL = "gateway.istio.io/managed"
MAX_PODS = 500_000
MIN_REFRESH_S = 60.0


def workload_name(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    for owner in meta.get("ownerReferences") or []:
        kind, name = owner.get("kind", ""), owner.get("name", "")
        if not name:
            continue
        if kind == "ReplicaSet":
            pod_hash = labels.get("pod-template-hash", "")
            if pod_hash and name.endswith("-" + pod_hash):
                return str(name[: -len(pod_hash) - 1])
            return str(name)
        if kind in {"StatefulSet", "DaemonSet", "Job", "Deployment"}:
            return str(name)
    return str(meta.get("name", ""))


def pod_endpoint(pod: dict[str, Any]) -> tuple[str, Endpoint] | None:
    """(pod IP, the workload's endpoint) for a running pod with its own IP, else None."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    if status.get("phase") != "Running" or not ip or spec.get("hostNetwork"):
        return None
    labels = meta.get("labels") or {}
    if labels.get(WAYPOINT_LABEL):
        return None
    namespace = meta.get("namespace") or "default"
    workload = workload_name(pod)
    service = (
        labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or workload
    )
    if not service:
        return None
    return str(ip), Endpoint(str(namespace), str(service), workload=workload)


class PodDirectory:
    """Implements the correlator's WorkloadDirectory; refreshed by the poller's loop.

    Lookups come from the pipeline thread while refreshes run on the poller's loop: the map is
    replaced whole, so a lookup sees either the old or the new listing, never a half-built one.
    A failed listing keeps the previous map.
    """

    def __init__(self, access: KubeAccess, *, interval_s: float, timeout_s: float) -> None:
        self._pods = PodListClient(
            access, "/api/v1/pods", {"fieldSelector": "status.phase=Running"}, timeout_s=timeout_s
        )
        self._by_ip: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self.state = TargetState("kubernetes:pods", interval_s)

    async def aclose(self) -> None:
        await self._pods.aclose()

    def lookup(self, ip: str) -> Endpoint | None:
        return self._by_ip.get(ip)

    def __len__(self) -> int:
        return len(self._by_ip)

    def replace(self, pods: list[dict[str, Any]]) -> None:
        self._swap(_by_ip(pods))

    def _swap(self, by_ip: dict[str, Endpoint]) -> None:
        with self._lock:
            self._by_ip = by_ip

    async def refresh(self, now_s: float) -> None:
        if not self.state.due(now_s):
            return
        by_ip = await self._pods.read(now_s, self.state, _listed_by_ip)
        if by_ip is None:
            return
        self._swap(by_ip)
        # Listing every pod is heavier than a scrape, and pod IPs change slowly.
        self.state.next_attempt_s = now_s + max(self.state.interval_s, MIN_REFRESH_S)


def _by_ip(pods: list[dict[str, Any]]) -> dict[str, Endpoint]:
    by_ip: dict[str, Endpoint] = {}
    for pod in pods[:MAX_PODS]:
        found = pod_endpoint(pod)
        if found is not None:
            by_ip[found[0]] = found[1]
    return by_ip


def _listed_by_ip(items: Any) -> dict[str, Endpoint]:
    if not isinstance(items, list):
        raise ValueError("no items in the pod list")
    return _by_ip(items)


def build_pod_directory(settings: Settings) -> PodDirectory | None:
    """With Kubernetes discovery, the pod list also names callers by pod IP."""
    if settings.ztunnel_discovery != "kubernetes" or settings.prometheus_url:
        return None
    return PodDirectory(
        access_from_settings(settings),
        interval_s=settings.poll_interval_s,
        timeout_s=settings.poll_timeout_s,
    )
