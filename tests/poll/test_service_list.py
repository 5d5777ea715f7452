"""Services → selectors → pods → canonical services: which Service names become aliases."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain import Alias, AliasSource
from app.poll.service_list import (
    SelectablePod,
    ServiceSelector,
    service_aliases,
    service_selectors,
)
from tests.poll.fake_kube_api import k8s_service


def pod(labels: dict[str, str], service: str, namespace: str = "db") -> SelectablePod:
    return SelectablePod(namespace, labels, service)


REDIS = pod({"app": "redis", "role": "master"}, "redis")
REDIS_REPLICA = pod({"app": "redis", "role": "replica"}, "redis")
API = pod({"tier": "backend", "app": "api"}, "api")
WORKER = pod({"tier": "backend", "app": "worker"}, "worker")


def kube(alias: str, service: str, namespace: str = "db") -> Alias:
    return Alias(namespace, alias, service, AliasSource.KUBERNETES)


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (
            [k8s_service("myrel-redis-master", {"app": "redis"}, namespace="db")],
            [kube("myrel-redis-master", "redis")],
        ),
        # every selector label must match, as for a Service's endpoints
        (
            [k8s_service("redis-replicas", {"app": "redis", "role": "replica"}, namespace="db")],
            [kube("redis-replicas", "redis")],
        ),
        # several canonical services behind one Service: the name stays its own node
        ([k8s_service("backend", {"tier": "backend"}, namespace="db")], []),
        # no selector (ExternalName, hand-made endpoints), or nothing selected yet
        ([k8s_service("external-db", None, namespace="db")], []),
        ([k8s_service("nothing", {"app": "gone"}, namespace="db")], []),
        # the selector is matched in the Service's own namespace only
        ([k8s_service("redis-elsewhere", {"app": "redis"}, namespace="shop")], []),
        # a Service named like a canonical service is that node, never an alias of another
        ([k8s_service("api", {"app": "redis"}, namespace="db")], []),
        ([k8s_service("redis", {"app": "redis"}, namespace="db")], []),
    ],
)
def test_service_aliases(services: list[dict[str, Any]], expected: list[Alias]) -> None:
    pods = [REDIS, REDIS_REPLICA, API, WORKER]
    assert service_aliases(service_selectors(services), pods) == expected


def test_service_selectors_skip_services_without_a_selector() -> None:
    listed = [
        k8s_service("reviews", {"app": "reviews"}),
        k8s_service("kubernetes", None, namespace="default"),
        {"metadata": {"name": "empty", "namespace": "bookinfo"}, "spec": {"selector": {}}},
    ]
    assert service_selectors(listed) == [
        ServiceSelector("bookinfo", "reviews", (("app", "reviews"),))
    ]
    with pytest.raises(ValueError, match="service list"):
        service_selectors("garbage")
