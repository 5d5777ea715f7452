"""Deterministic pods: node, IP and pod name for each workload and waypoint."""

from __future__ import annotations

import random
import string
from typing import Literal

from app.sim.topology import Waypoint, Workload

_POD_HASH = string.ascii_lowercase + string.digits


class Placement:
    """Hands out nodes round-robin and pod IPs `10.42.<node>.<n>` (one /24 per node, as Flannel)."""

    def __init__(self, nodes: int, rng: random.Random) -> None:
        if not 1 <= nodes <= 250:
            raise ValueError("nodes must be between 1 and 250")
        self.nodes = tuple(f"node-{i}" for i in range(nodes))
        self._rng = rng
        self._next_node = 0
        self._next_host = [10] * nodes

    def _slot(self) -> tuple[str, str]:
        i = self._next_node
        self._next_node = (i + 1) % len(self.nodes)
        host = self._next_host[i]
        if host > 254:
            raise ValueError(f"node-{i} is full (245 pods)")
        self._next_host[i] = host + 1
        return self.nodes[i], f"10.42.{i}.{host}"

    def _pod(self, deployment: str) -> str:
        rs = "".join(self._rng.choice(_POD_HASH) for _ in range(9))
        suffix = "".join(self._rng.choice(_POD_HASH) for _ in range(5))
        return f"{deployment}-{rs}-{suffix}"

    def workload(self, service: str, version: str = "v1") -> Workload:
        return self.deployment(f"{service}-{version}", version)

    def deployment(self, name: str, version: str = "latest") -> Workload:
        """A Deployment named `name` (its pod's `version` label, or `latest`), one pod."""
        node, ip = self._slot()
        return Workload(name=name, version=version, node=node, ip=ip, pod=self._pod(name))

    def waypoint(
        self,
        namespace: str,
        name: str = "waypoint",
        waypoint_for: Literal["service", "workload"] = "service",
    ) -> Waypoint:
        node, ip = self._slot()
        return Waypoint(
            namespace=namespace,
            node=node,
            ip=ip,
            pod=self._pod(name),
            name=name,
            waypoint_for=waypoint_for,
        )
