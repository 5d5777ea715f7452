"""Kubernetes Service names → canonical services: Services → selectors → pods → canonical labels.

`GET /api/v1/services` (paged, at most MAX_SERVICES) gives each Service's `spec.selector`; the pods
it selects in its namespace (every selector label equal, Kubernetes' rule for a Service's
endpoints) name their canonical service, and when they all name the same one the Service name is
an alias of it (DESIGN.md, Node identity), e.g. `db/myrel-redis-master` → `db/redis`.

No alias is made when:
- the Service has no selector (ExternalName, or endpoints managed by hand): no pods to ask;
- it selects no running pod: nothing to say yet;
- its pods are of several canonical services (a `backend` Service over `api` and `worker` pods):
  traffic to the Service name is traffic to all of them, and aliasing the name to one would put
  the others' traffic on that node. The name stays its own node, as ztunnel's
  `destination_service` names it;
- the Service name is itself a canonical service of pods in the namespace: a canonical name is
  a node and is never turned into an alias of another.
Waypoint pods are not offered here (their own Service names the waypoint, which is a proxy, not
a node). Needs cluster-wide `list services` (deploy/kubernetes/components/pod-ips).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.domain import Alias, AliasSource
from app.poll.kube_access import KubeAccess
from app.poll.pod_list import PodListClient
from app.poll.target_state import TargetState

MAX_SERVICES = 200_000


@dataclass(frozen=True, slots=True)
class ServiceSelector:
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SelectablePod:
    """What Service matching needs of a running pod."""

    namespace: str
    labels: Mapping[str, str]
    service: str  # its canonical service


def service_selectors(items: Any) -> list[ServiceSelector]:
    """The Services of a list that have a selector (the others are skipped, see the module)."""
    if not isinstance(items, list):
        raise ValueError("no items in the service list")
    out = []
    for item in items[:MAX_SERVICES]:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        selector = spec.get("selector") or {}
        name = meta.get("name")
        if not selector or not name:
            continue
        pairs = tuple(sorted((str(k), str(v)) for k, v in selector.items()))
        out.append(ServiceSelector(str(meta.get("namespace") or "default"), str(name), pairs))
    return out


def service_aliases(
    services: Iterable[ServiceSelector], pods: Iterable[SelectablePod]
) -> list[Alias]:
    """Service name → canonical service, for each Service whose selected pods agree on one."""
    # (namespace, label, value) → the pods carrying it: a selector is checked only against the
    # pods of its rarest label, not against every pod of the namespace.
    posting: dict[tuple[str, str, str], list[SelectablePod]] = defaultdict(list)
    canonical: set[tuple[str, str]] = set()
    for pod in pods:
        canonical.add((pod.namespace, pod.service))
        for key, value in pod.labels.items():
            posting[(pod.namespace, key, value)].append(pod)
    out = []
    for svc in services:
        if (svc.namespace, svc.name) in canonical:
            continue
        lists = [posting.get((svc.namespace, k, v), []) for k, v in svc.selector]
        candidates = min(lists, key=len)
        selected = {
            pod.service
            for pod in candidates
            if all(pod.labels.get(k) == v for k, v in svc.selector)
        }
        if len(selected) == 1:
            (service,) = selected
            out.append(Alias(svc.namespace, svc.name, service, AliasSource.KUBERNETES))
    return out


class ServiceListClient:
    """Lists every Service in the cluster; a failed listing is on `state` and answers None."""

    def __init__(self, access: KubeAccess, *, interval_s: float, timeout_s: float) -> None:
        self._services = PodListClient(
            access,
            "/api/v1/services",
            {},
            timeout_s=timeout_s,
            max_items=MAX_SERVICES,
            what="service list",
        )
        self.state = TargetState("kubernetes:services", interval_s)

    async def aclose(self) -> None:
        await self._services.aclose()

    async def read(self, now_s: float) -> list[ServiceSelector] | None:
        return await self._services.read(now_s, self.state, service_selectors)
