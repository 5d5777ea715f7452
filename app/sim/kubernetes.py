"""What the Kubernetes API would list for a simulated mesh: its nodes (with their zone labels) and
its running pods, as `GET /api/v1/nodes` and `GET /api/v1/pods` items.

Shapes from Kubernetes and Istio, not from meshstitch: a Deployment's pod is owned by the
ReplicaSet `<deployment>-<pod-template-hash>` and carries that hash as a label (kube-controller-
manager's deployment controller); a node carries `topology.kubernetes.io/zone` and `…/region`
("Well-Known Labels, Annotations and Taints"); an app pod carries `app`, `version` (bookinfo's
manifests) and `service.istio.io/canonical-name`; a waypoint pod carries the labels of
istio/istio `manifests/charts/istio-control/istio-discovery/files/waypoint.yaml`
(`gateway.istio.io/managed: istio.io-mesh-controller`,
`gateway.networking.k8s.io/gateway-name`, `service.istio.io/canonical-name`).
Pod names come from app/sim/placement.py: `<deployment>-<hash>-<suffix>`.
"""

from __future__ import annotations

from typing import Any

from app.sim.topology import Topology

ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"


def k8s_nodes(topology: Topology) -> list[dict[str, Any]]:
    out = []
    for node in topology.nodes:
        zone = topology.zone_of(node)
        labels = {"kubernetes.io/hostname": node}
        if zone:
            labels.update({ZONE_LABEL: zone, REGION_LABEL: topology.region})
        out.append({"metadata": {"name": node, "labels": labels}})
    return out


def _pod(
    namespace: str, deployment: str, pod: str, node: str, ip: str, labels: dict[str, str]
) -> dict[str, Any]:
    replica_set = pod.rsplit("-", 1)[0]
    pod_hash = replica_set[len(deployment) + 1 :]
    return {
        "metadata": {
            "name": pod,
            "namespace": namespace,
            "labels": {**labels, "pod-template-hash": pod_hash},
            "ownerReferences": [{"kind": "ReplicaSet", "name": replica_set}],
        },
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "podIP": ip},
    }


def k8s_pods(topology: Topology) -> list[dict[str, Any]]:
    """Every simulated workload's and waypoint's pod."""
    out = []
    for service in topology.services:
        for wl in service.workloads:
            labels = {
                "app": service.name,
                "version": wl.version,
                "service.istio.io/canonical-name": service.name,
            }
            out.append(_pod(service.namespace, wl.name, wl.pod, wl.node, wl.ip, labels))
    for waypoint in topology.waypoints:
        labels = {
            "gateway.istio.io/managed": "istio.io-mesh-controller",
            "gateway.networking.k8s.io/gateway-name": waypoint.name,
            "service.istio.io/canonical-name": waypoint.name,
        }
        out.append(
            _pod(
                waypoint.namespace,
                waypoint.name,
                waypoint.pod,
                waypoint.node,
                waypoint.ip,
                labels,
            )
        )
    return out
