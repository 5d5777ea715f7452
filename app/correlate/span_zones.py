"""A waypoint's zone as its own spans state it: the last-resort zone source for the waypoint hop
of a zone path (app/poll/zone_split.py), after ztunnel's locality labels and node topology.

Envoy tags the span its HTTP connection manager starts with `node_id` and `zone`
(envoyproxy/envoy `source/common/tracing/tracer_impl.cc`, `TracerImpl::startSpan`:
`setTag(Tracing::Tags::get().NodeId, local_info_.nodeName())` and
`setTag(Tracing::Tags::get().Zone, local_info_.zoneName())`; the tag names are
`source/common/tracing/common_values.h`'s `NodeId{"node_id"}` and `Zone{"zone"}`), and
`LocalInfoImpl::zoneName()` is the bootstrap node's `locality.zone`
(`source/common/local_info/local_info_impl.h`), which Istio writes into the proxy's bootstrap.
An empty zone (no locality) is written as "" and says nothing.

The spans name the waypoint *pod* (`node_id` `waypoint~<ip>~<pod>.<ns>~…`), ztunnel's series only
the waypoint *workload*. So, as with node topology (app/poll/node_zones.py), a waypoint workload
has a zone only while the pods remembered for it all report the same one: replicas in several
zones give none (a series cannot say which replica carried its bytes). Bounded: at most
`MAX_WAYPOINTS` workloads (the oldest learned is forgotten first) and `MAX_PODS` pods each (the
pod learned longest ago is forgotten first, so a rescheduled waypoint's old pod stops counting
once `MAX_PODS` newer pods of it have been seen).
"""

from __future__ import annotations

import threading

MAX_WAYPOINTS = 10_000
MAX_PODS = 8


class WaypointSpanZones:
    """(namespace, waypoint workload) → its pods' zones from their spans; thread-safe to learn
    (the ingest thread) while the poller thread reads."""

    def __init__(self, max_waypoints: int = MAX_WAYPOINTS, max_pods: int = MAX_PODS) -> None:
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], dict[str, str]] = {}  # insertion order = age
        self._max_waypoints, self._max_pods = max_waypoints, max_pods

    def learn(self, namespace: str, workload: str, pod: str, zone: str) -> None:
        if not (workload and pod and zone):
            return
        key = (namespace, workload)
        with self._lock:
            pods = self._pods.get(key)
            if pods is None:
                if len(self._pods) >= self._max_waypoints:
                    del self._pods[next(iter(self._pods))]
                pods = self._pods[key] = {}
            pods.pop(pod, None)  # re-learned: the newest again
            pods[pod] = zone
            while len(pods) > self._max_pods:
                del pods[next(iter(pods))]

    def zone_of(self, namespace: str, workload: str) -> str:
        """The zone all remembered pods of the waypoint reported, "" when none or several."""
        with self._lock:
            pods = self._pods.get((namespace, workload))
            zones = set(pods.values()) if pods else set()
        return next(iter(zones)) if len(zones) == 1 else ""

    def __len__(self) -> int:
        return len(self._pods)
