"""Node identity: aliases resolve to the canonical service; proxies from evidence only."""

from __future__ import annotations

import pytest

from app.correlate.identity import NodeIdentity
from app.domain import Alias, AliasSource, Endpoint, NodeKind
from app.settings import parse_alias_setting


def test_an_alias_resolves_and_the_stronger_source_wins() -> None:
    identity = NodeIdentity()
    assert identity.learn(Alias("db", "myrel-redis-master", "redis", AliasSource.SPAN))
    assert identity.resolve("db", "myrel-redis-master") == "redis"
    assert identity.resolve("other", "myrel-redis-master") == "myrel-redis-master"
    # a weaker source cannot overwrite a stronger one; a stronger one can
    assert identity.learn(Alias("db", "myrel-redis-master", "cache", AliasSource.KUBERNETES))
    assert not identity.learn(Alias("db", "myrel-redis-master", "redis", AliasSource.ZTUNNEL))
    assert identity.resolve("db", "myrel-redis-master") == "cache"
    assert [a.service for a in identity.drain_new()] == ["cache"]
    assert identity.drain_new() == []


def test_an_otel_name_seen_before_its_workload_becomes_an_alias_when_the_workload_is_learned() -> (
    None
):
    identity = NodeIdentity()
    assert identity.note_app_name("bookinfo", "reviews-svc", "reviews-v1") == "reviews-svc"
    identity.learn(Alias("bookinfo", "reviews-v1", "reviews", AliasSource.ZTUNNEL))
    assert identity.resolve("bookinfo", "reviews-svc") == "reviews"
    # once the workload is known, the name resolves at once
    assert identity.note_app_name("bookinfo", "reviews-java", "reviews-v1") == "reviews"


def test_canonical_names_service_endpoints_only_and_marks_gateways() -> None:
    identity = NodeIdentity([Alias("shop", "cart-svc", "cart", AliasSource.SETTING)])
    cart = Endpoint("shop", "cart-svc", "cart-v1")
    assert identity.canonical(cart) == Endpoint("shop", "cart", "cart-v1")
    external = Endpoint("external", "cart-svc", kind=NodeKind.EXTERNAL)
    assert identity.canonical(external) is external
    identity.learn_gateway("istio-system", "istio-ingressgateway")
    gateway = identity.canonical(Endpoint("istio-system", "istio-ingressgateway"))
    assert gateway.kind is NodeKind.GATEWAY


def test_waypoints_come_from_evidence_or_the_setting_never_from_a_name() -> None:
    identity = NodeIdentity(waypoints=["bookinfo/bookinfo-l7", "edge-proxy"])
    assert identity.is_waypoint("bookinfo", "bookinfo-l7")
    assert identity.is_waypoint("anywhere", "edge-proxy")
    assert not identity.is_waypoint("bookinfo", "waypoint-ui")
    assert not identity.is_waypoint("bookinfo", "waypoint")
    identity.learn_waypoint("bookinfo", "waypoint")
    assert identity.is_waypoint("bookinfo", "waypoint")


def test_the_alias_setting_is_parsed_or_names_the_bad_item() -> None:
    assert parse_alias_setting(" db/myrel-redis-master=redis, shop/cart-svc=shop/cart ") == [
        Alias("db", "myrel-redis-master", "redis", AliasSource.SETTING),
        Alias("shop", "cart-svc", "cart", AliasSource.SETTING),
    ]
    with pytest.raises(ValueError, match="nonamespace=redis"):
        parse_alias_setting("nonamespace=redis")
    with pytest.raises(ValueError, match="one namespace"):
        parse_alias_setting("db/a=other/b")
