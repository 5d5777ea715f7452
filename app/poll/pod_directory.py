"""Pod IP → workload, from the Kubernetes pod list: the `peer.address` evidence of DESIGN.md; and,
given node identity, what the cluster says about names (DESIGN.md, Node identity).

A waypoint span whose caller is not instrumented carries the caller's pod IP in `peer.address`
(HBONE keeps the original source address). With this directory the correlator names the caller
as the ztunnel metrics do, so the L7 and L4 layers meet on the same node ids:
- service: label `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`,
  else the workload name (Istio's canonical-service rule, istio/istio pkg/kube/labels/labels.go
  `CanonicalService`, the label name in pkg/model/proxy.go `IstioCanonicalServiceLabelName`);
- workload: the owning Deployment (ReplicaSet name less its `pod-template-hash`), StatefulSet,
  DaemonSet or Job, else the pod name (what ztunnel reports as `*_workload`).
Pods on the host network share the node's IP and are left out of the IP map, as are waypoint pods
(they are never the caller a waypoint span is looking for).

With an IdentityEvidence, every successful listing also teaches it, in the pod's namespace:
workload → canonical service, pod name → canonical service, pod IP → canonical service (the last
two are not persisted: pods come and go and IPs are reused, so they are learned again from each
listing), Service name → canonical service (app/poll/service_list.py), and the proxies by their
labels, never their names (`role`). Learned names are never forgotten by a failed listing.
It also lists nodes, for the zone each workload runs in (app/poll/node_zones.py).
Needs cluster-wide `list pods` and `list nodes` (and `list services` with identity; deploy/ RBAC).

It runs in either L4 mode (`MESHSTITCH_KUBERNETES_PODS`, `directory_choice`): ztunnel scraped
directly or read through PromQL, the pod list is the same, and so are its uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.domain import Alias, AliasSource, Endpoint, IdentityEvidence
from app.poll.kube_access import KubeAccess, access_from_settings, in_cluster_available
from app.poll.node_zones import MAX_NODES, node_zones, workload_zones
from app.poll.pod_list import PodListClient
from app.poll.service_list import SelectablePod, ServiceListClient, service_aliases
from app.poll.target_state import TargetState
from app.self_report import PartState
from app.settings import Settings

MAX_PODS = 500_000
MIN_REFRESH_S = 60.0

# The labels Istio puts on the pods of the Deployments it generates for a Gateway
# (manifests/charts/istio-control/istio-discovery/files/waypoint.yaml, kube-gateway.yaml,
# agentgateway*.yaml: `gateway.istio.io/managed` = the class's ControllerLabel,
# `gateway.networking.k8s.io/gateway-class-name` = the class; classes and controller labels in
# pilot/pkg/config/kube/gatewaycommon/classinfo.go and pkg/config/constants/constants.go).
MANAGED_LABEL = "gateway.istio.io/managed"
CLASS_LABEL = "gateway.networking.k8s.io/gateway-class-name"
WAYPOINT_CONTROLLERS = frozenset(
    {"istio.io-mesh-controller", "istio.io-agentgateway-waypoint-controller"}
)
WAYPOINT_CLASSES = frozenset({"istio-waypoint", "istio-agentgateway-waypoint"})
# `istio` is the default class (PILOT_GATEWAY_API_DEFAULT_GATEWAYCLASS_NAME); the east-west
# gateway uses the waypoint template but is a network edge, not a proxy to collapse.
GATEWAY_CONTROLLERS = frozenset({"istio.io-gateway-controller", "istio.io-eastwest-controller"})
GATEWAY_CLASSES = frozenset({"istio", "istio-agentgateway", "istio-east-west"})
# The Helm gateways (manifests/charts/gateways/istio-{ingress,egress}/values.yaml; pilot's
# IsIngressGateway in pilot/pkg/model/context.go still reads `istio=ingressgateway`).
LEGACY_GATEWAY_LABEL = "istio"
LEGACY_GATEWAY_VALUES = frozenset({"ingressgateway", "egressgateway"})

WAYPOINT, GATEWAY, APP = "waypoint", "gateway", "app"


def role(labels: Mapping[str, str]) -> str:
    """WAYPOINT, GATEWAY or APP, from the labels Istio puts on its proxies' pods."""
    managed, gateway_class = labels.get(MANAGED_LABEL), labels.get(CLASS_LABEL)
    if managed in WAYPOINT_CONTROLLERS or gateway_class in WAYPOINT_CLASSES:
        return WAYPOINT
    if (
        managed in GATEWAY_CONTROLLERS
        or gateway_class in GATEWAY_CLASSES
        or labels.get(LEGACY_GATEWAY_LABEL) in LEGACY_GATEWAY_VALUES
    ):
        return GATEWAY
    return APP


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


def canonical_service(labels: Mapping[str, str], workload: str) -> str:
    """Istio's rule (pkg/kube/labels/labels.go `canonicalServiceName`)."""
    return (
        labels.get("service.istio.io/canonical-name")
        or labels.get("app.kubernetes.io/name")
        or labels.get("app")
        or workload
    )


@dataclass(frozen=True, slots=True)
class RunningPod:
    namespace: str
    name: str
    workload: str
    service: str  # canonical
    ip: str  # "" on the host network: the node's IP names no pod
    labels: Mapping[str, str]
    role: str
    node: str = ""  # spec.nodeName

    def endpoint(self) -> Endpoint:
        return Endpoint(self.namespace, self.service, workload=self.workload)


def running_pod(pod: dict[str, Any]) -> RunningPod | None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if status.get("phase") != "Running":
        return None
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    workload = workload_name(pod)
    service = canonical_service(labels, workload)
    if not service:
        return None
    ip = "" if spec.get("hostNetwork") else str(status.get("podIP") or "")
    return RunningPod(
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
        workload,
        service,
        ip,
        labels,
        role(labels),
        str(spec.get("nodeName") or ""),
    )


def pod_endpoint(pod: dict[str, Any]) -> tuple[str, Endpoint] | None:
    """(pod IP, the workload's endpoint) for a running pod with its own IP, else None."""
    found = running_pod(pod)
    if found is None or not found.ip or found.role == WAYPOINT:
        return None
    return found.ip, found.endpoint()


def learn_pods(identity: IdentityEvidence, pods: list[RunningPod]) -> None:
    """The aliases and proxies a pod listing shows (see the module docstring)."""
    canonical = {(pod.namespace, pod.service) for pod in pods if pod.role != WAYPOINT}
    for pod in pods:
        if pod.role == WAYPOINT:
            identity.learn_waypoint(pod.namespace, pod.workload)
            continue
        if pod.role == GATEWAY:
            identity.learn_gateway(pod.namespace, pod.service)
        for name, persist in ((pod.workload, True), (pod.name, False), (pod.ip, False)):
            # A name that is some pod's canonical service is a node, never an alias of another.
            if name and (pod.namespace, name) not in canonical:
                alias = Alias(pod.namespace, name, pod.service, AliasSource.KUBERNETES)
                identity.learn(alias, persist=persist)


class PodDirectory:
    """Implements the correlator's WorkloadDirectory; refreshed by the poller's loop.

    Lookups come from the pipeline thread while refreshes run on the poller's loop: the map is
    replaced whole, so a lookup sees either the old or the new listing, never a half-built one.
    A failed listing keeps the previous map. Services are listed only with `identity`, after a
    successful pod listing, on their own TargetState (`states`).
    """

    def __init__(
        self,
        access: KubeAccess,
        *,
        interval_s: float,
        timeout_s: float,
        identity: IdentityEvidence | None = None,
    ) -> None:
        self._pods = PodListClient(
            access,
            "/api/v1/pods",
            {"fieldSelector": "status.phase=Running"},
            timeout_s=timeout_s,
            max_items=MAX_PODS,
        )
        self._identity = identity
        self._services = (
            ServiceListClient(access, interval_s=interval_s, timeout_s=timeout_s)
            if identity is not None
            else None
        )
        self._by_ip: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self.state = TargetState("kubernetes:pods", interval_s)
        # Node topology: zones for ztunnels without locality labels (app/poll/node_zones.py).
        self._nodes = PodListClient(
            access, "/api/v1/nodes", {}, timeout_s=timeout_s, max_items=MAX_NODES, what="node list"
        )
        # Not part of readiness (`states`): without `list nodes` only the zones are missing.
        self.node_state = TargetState("kubernetes:nodes", interval_s)
        self._node_zones: dict[str, str] = {}
        self._zones: dict[tuple[str, str], str] = {}

    @property
    def states(self) -> list[TargetState]:
        """Every listing's health, for readiness: pods, and Services when identity is taught."""
        return [self.state] + ([self._services.state] if self._services is not None else [])

    async def aclose(self) -> None:
        await self._pods.aclose()
        await self._nodes.aclose()
        if self._services is not None:
            await self._services.aclose()

    def lookup(self, ip: str) -> Endpoint | None:
        return self._by_ip.get(ip)

    def zone_of(self, namespace: str, workload: str) -> str:
        """The workload's zone from node topology, "" when unknown or spread over zones."""
        return self._zones.get((namespace, workload), "")

    def __len__(self) -> int:
        return len(self._by_ip)

    @property
    def zoned_workloads(self) -> int:
        return len(self._zones)

    @property
    def zoned_nodes(self) -> int:
        return len(self._node_zones)

    def replace(
        self, pods: list[dict[str, Any]], nodes: list[dict[str, Any]] | None = None
    ) -> None:
        listed = _listed_pods(pods)
        if nodes is not None:
            self._node_zones = node_zones(nodes)
        self._swap(_by_ip(listed))
        self._zones = _zones(listed, self._node_zones)

    def _swap(self, by_ip: dict[str, Endpoint]) -> None:
        with self._lock:
            self._by_ip = by_ip

    async def refresh(self, now_s: float) -> None:
        if not self.state.due(now_s):
            return
        pods = await self._pods.read(now_s, self.state, _listed_pods)
        if pods is None:
            return
        self._swap(_by_ip(pods))
        # Listing every pod is heavier than a scrape, and pod IPs change slowly.
        self.state.next_attempt_s = now_s + max(self.state.interval_s, MIN_REFRESH_S)
        if self.node_state.due(now_s):
            zones = await self._nodes.read(now_s, self.node_state, node_zones)
            if zones is not None:  # a failed node listing keeps the zones known before
                self._node_zones = zones
                self.node_state.next_attempt_s = now_s + max(self.state.interval_s, MIN_REFRESH_S)
        self._zones = _zones(pods, self._node_zones)
        if self._identity is not None:
            learn_pods(self._identity, pods)
            await self._learn_services(now_s, pods)

    async def _learn_services(self, now_s: float, pods: list[RunningPod]) -> None:
        if self._services is None or self._identity is None:
            return
        state = self._services.state
        if not state.due(now_s):
            return
        services = await self._services.read(now_s)
        if services is None:
            return
        state.next_attempt_s = now_s + max(state.interval_s, MIN_REFRESH_S)
        selectable = [
            SelectablePod(pod.namespace, pod.labels, pod.service)
            for pod in pods
            if pod.role != WAYPOINT
        ]
        for alias in service_aliases(services, selectable):
            self._identity.learn(alias)


def _zones(pods: list[RunningPod], nodes: dict[str, str]) -> dict[tuple[str, str], str]:
    return workload_zones(((p.namespace, p.workload, p.node) for p in pods), nodes)


def _by_ip(pods: list[RunningPod]) -> dict[str, Endpoint]:
    return {pod.ip: pod.endpoint() for pod in pods if pod.ip and pod.role != WAYPOINT}


def _listed_pods(items: Any) -> list[RunningPod]:
    if not isinstance(items, list):
        raise ValueError("no items in the pod list")
    found = (running_pod(pod) for pod in items[:MAX_PODS])
    return [pod for pod in found if pod is not None]


@dataclass(frozen=True, slots=True)
class DirectoryChoice:
    """Whether the pod directory runs, and why: reported in /readyz (`kubernetes_pods`)."""

    enabled: bool
    reason: str


def directory_choice(
    settings: Settings, *, in_cluster: Callable[[], bool] = in_cluster_available
) -> DirectoryChoice:
    """`MESHSTITCH_KUBERNETES_PODS`: `auto` keeps direct scrape as it was (the directory runs
    with Kubernetes discovery) and, in PromQL mode, runs it when Kubernetes access is configured."""
    setting = settings.kubernetes_pods
    if setting != "auto":
        return DirectoryChoice(setting == "on", f"MESHSTITCH_KUBERNETES_PODS={setting}")
    if not settings.prometheus_url:
        if settings.ztunnel_discovery == "kubernetes":
            return DirectoryChoice(True, "auto: direct scrape with ztunnel_discovery=kubernetes")
        return DirectoryChoice(False, "auto: direct scrape without Kubernetes discovery")
    if settings.kubeconfig:
        return DirectoryChoice(True, "auto: PromQL mode, Kubernetes access from the kubeconfig")
    if in_cluster():
        return DirectoryChoice(True, "auto: PromQL mode, in a pod with a service-account token")
    return DirectoryChoice(
        False, "auto: PromQL mode without Kubernetes access (no kubeconfig, no service account)"
    )


def build_pod_directory(
    settings: Settings,
    *,
    identity: IdentityEvidence | None = None,
    choice: DirectoryChoice | None = None,
) -> PodDirectory | None:
    """The pod directory when `choice` (by default `directory_choice(settings)`) says so: it
    names callers by pod IP, gives workloads their nodes' zones, and teaches `identity` (when
    given) what the cluster calls each canonical service."""
    choice = choice if choice is not None else directory_choice(settings)
    if not choice.enabled:
        return None
    return PodDirectory(
        access_from_settings(settings),
        interval_s=settings.poll_interval_s,
        timeout_s=settings.poll_timeout_s,
        identity=identity,
    )


def directory_state(
    settings: Settings, choice: DirectoryChoice, directory: PodDirectory | None
) -> PartState:
    """/readyz `kubernetes_pods`: never unready (the listings' health is the poller's targets);
    says whether the directory runs, why, and how much of it is known, the node listing (zones)
    included."""
    detail: dict[str, object] = {
        "setting": settings.kubernetes_pods,
        "enabled": choice.enabled,
        "reason": choice.reason,
    }
    if directory is not None:
        detail["pod_ips"] = len(directory)
        detail["workloads_with_zone"] = directory.zoned_workloads
        detail["nodes"] = {
            "nodes_with_zone": directory.zoned_nodes,
            **directory.node_state.detail(),
        }
    return PartState(True, detail)
