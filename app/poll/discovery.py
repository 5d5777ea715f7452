"""ztunnel pods from the Kubernetes API: `GET /api/v1/namespaces/<ns>/pods?labelSelector=app=ztunnel`;
waypoint pods (for their request metrics) cluster-wide by their Gateway label:
`GET /api/v1/pods?labelSelector=gateway.istio.io/managed=istio.io-mesh-controller` (the label
Istio's waypoint template puts on every waypoint pod; the pod's
`gateway.networking.k8s.io/gateway-name` names the waypoint, as ztunnel's series do).

Credentials come from app/poll/kube_access.py; the listing from app/poll/pod_list.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.poll.kube_access import KubeAccess
from app.poll.pod_list import PodListClient
from app.poll.scrape import Target
from app.poll.target_state import TargetState


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class KubernetesDiscovery:
    """Lists Running ztunnel pods with an IP. A failed listing keeps the previous targets."""

    def __init__(
        self,
        access: KubeAccess,
        *,
        namespace: str,
        port: int,
        interval_s: float,
        timeout_s: float,
        started_s: float,
        label_selector: str = "app=ztunnel",
        path: str = "/metrics",
        waypoints: bool = False,
    ) -> None:
        """`namespace` "" lists pods in every namespace; `waypoints` names each target's
        waypoint (`Target.via`) from its Gateway label."""
        pods_path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        self._pods = PodListClient(
            access, pods_path, {"labelSelector": label_selector}, timeout_s=timeout_s
        )
        self._port, self._started_s = port, started_s
        self._path, self._waypoints = path, waypoints
        where = namespace or "*"
        self.state = TargetState(f"kubernetes:{where}/{label_selector}", interval_s)
        self.targets: list[Target] = []

    def restart_baseline(self, now_s: float) -> None:
        """Pods started before `now_s` are baselined on their first scrape (a new poll leader)."""
        self._started_s = now_s

    async def aclose(self) -> None:
        await self._pods.aclose()

    async def discover(self, now_s: float) -> list[Target]:
        if not self.state.due(now_s):
            return self.targets
        targets = await self._pods.read(now_s, self.state, self._targets)
        if targets is not None:
            self.targets = targets
        return self.targets

    def _targets(self, pods: Any) -> list[Target]:
        targets = []
        for pod in pods or []:
            status = pod.get("status") or {}
            ip = status.get("podIP")
            if status.get("phase") != "Running" or not ip:
                continue
            host = f"[{ip}]" if ":" in ip else ip
            started = _parse_time(status.get("startTime"))
            # A pod that started after we began watching has only new traffic in its counters.
            late = started is not None and started > self._started_s
            via = ""
            if self._waypoints:
                meta = pod.get("metadata") or {}
                name = (meta.get("labels") or {}).get(GATEWAY_NAME_LABEL, "")
                via = f"{meta.get('namespace', '')}/{name}" if name else ""
            targets.append(Target(f"http://{host}:{self._port}{self._path}", late, via))
        return targets


GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
WAYPOINT_SELECTOR = "gateway.istio.io/managed=istio.io-mesh-controller"
