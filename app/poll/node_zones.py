"""Zones from Kubernetes node topology: the fallback for ztunnels that print no locality labels
(before 1.26, app/poll/zone_split.py).

A node's zone is its well-known label `topology.kubernetes.io/zone` (kubernetes.io/docs,
"Well-Known Labels, Annotations and Taints"; the kubelet sets it from the cloud provider), or the
deprecated `failure-domain.beta.kubernetes.io/zone` on older nodes. A workload's zone is that of
the nodes its running pods are scheduled on (`spec.nodeName`) when they all share one; a
workload spread over zones has none (its series cannot say which pod carried the bytes).
Needs cluster-wide `list nodes` (deploy/kubernetes/components/pod-ips).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
MAX_NODES = 50_000


def node_zones(items: Any) -> dict[str, str]:
    """Node name → zone for the nodes of a `GET /api/v1/nodes` answer that have one."""
    if not isinstance(items, list):
        raise ValueError("no items in the node list")
    out = {}
    for node in items[:MAX_NODES]:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        zone = next((str(labels[k]) for k in ZONE_LABELS if labels.get(k)), "")
        if zone and meta.get("name"):
            out[str(meta["name"])] = zone
    return out


def workload_zones(
    pods: Iterable[tuple[str, str, str]], zones: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """(namespace, workload) → zone from (namespace, workload, node) of each running pod, for
    the workloads whose pods all run in one known zone."""
    seen: dict[tuple[str, str], set[str]] = {}
    for namespace, workload, node in pods:
        seen.setdefault((namespace, workload), set()).add(zones.get(node, ""))
    return {key: next(iter(z)) for key, z in seen.items() if len(z) == 1 and "" not in z}
