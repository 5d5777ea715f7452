"""The memoised waypoint rules (`SpanNormalizer.waypoint_ends`, `SpanCorrelator._waypoint_obs`)
against the plain ones (`_waypoint_obs_plain`): the same observations, stats and identity state
on generated span streams, with memos small enough to empty themselves mid-stream."""

from __future__ import annotations

import random
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.correlate import normalize
from app.correlate.correlator import SpanCorrelator
from app.correlate.identity import NodeIdentity
from app.correlate.normalize import SpanNormalizer
from app.domain import Alias, AliasSource, AttrValue, Endpoint, L7Observation, NodeKind, SpanKind
from tests.correlate.spans import S, span, waypoint_span

ABSENT = object()  # an attribute left out

WP_NODE = "waypoint~10.42.0.9~waypoint-6b9f7c7d9-abcde.default~default.svc.cluster.local"
WP_NODE_B = (
    "waypoint~10.42.1.3~bookinfo-waypoint-7c9f6d8b5-xyzab.bookinfo~bookinfo.svc.cluster.local"
)
GW_NODE = "router~10.42.0.5~gateway-7c9f6d8b5-qwert.istio-system~istio-system.svc.cluster.local"

# Values each attribute of a route (what the memo is keyed by, and then some) may take; ABSENT
# leaves it out. A few non-strings and "unknown"s too.
ROUTE_VALUES: dict[str, list[Any]] = {
    "upstream_cluster": [
        "inbound-vip|9080|http|reviews.default.svc.cluster.local",
        "inbound-vip|9080|http|ratings.bookinfo.svc.cluster.local",
        "outbound|9080|v1|reviews.default.svc.cluster.local",
        "inbound-vip|443|tcp|api.example.com",
        "encap",
        "PassthroughCluster",
        "BlackHoleCluster",
        "inbound|9080||",
        "garbage",
        "",
        7,
        ABSENT,
    ],
    "upstream_cluster.name": ["inbound-vip|9080|http|details.default.svc.cluster.local", ABSENT],
    "istio.destination_namespace": ["default", "bookinfo", "unknown", "", 3, ABSENT],
    "istio.destination_canonical_service": [
        *["reviews", "reviews", "reviews-canon", "ratings"],
        *["unknown", ABSENT, ABSENT],
    ],
    "istio.destination_workload": ["reviews-v1", "ratings-v2", "unknown", ABSENT],
    "istio.canonical_service": ["waypoint", "reviews", "bookinfo-waypoint", "", ABSENT],
    "istio.namespace": ["default", "bookinfo", "", ABSENT],
    "node_id": [WP_NODE, WP_NODE, WP_NODE_B, GW_NODE, "", ABSENT],
    "zone": ["", "zone-a", "zone-b", "zone-b", ABSENT],
}
# Values that vary from span to span of one route.
PER_SPAN_VALUES: dict[str, list[Any]] = {
    "peer.address": [
        "10.42.0.7:5555",
        "10.42.0.8:1234",
        "10.42.0.9:80",
        "[fd00::7]:80",
        "envoy://internal_client_address/",
        ABSENT,
    ],
    "upstream_address": [
        "envoy://connect_originate/10.42.0.7:9080",
        "10.42.0.8:9080",
        "10.42.0.6:9080",
        ABSENT,
    ],
    "http.url": ["http://reviews:9080/a", "http://10.42.0.7/b", "http://api.example.com/", ABSENT],
    "istio.source_namespace": ["default", "bookinfo", "unknown", ABSENT, ABSENT],
    "istio.source_canonical_service": ["productpage", "unknown", "", ABSENT],
    "istio.source_workload": ["productpage-v1", "unknown", ABSENT],
    "http.status_code": ["200", "503", 404, ABSENT],
    "response_flags": ["-", "UF", ABSENT],
    "grpc.status_code": [2, ABSENT, ABSENT, ABSENT],
    "component": ["proxy", ABSENT],
}
RESOURCE_VALUES: dict[str, list[Any]] = {
    "istio.canonical_service": ["waypoint", "reviews", ABSENT, ABSENT],
    "istio.namespace": ["default", "bookinfo", ABSENT],
    "k8s.namespace.name": ["default", "bookinfo", ABSENT],
    "k8s.pod.name": ["reviews-v1-6b9f7c7d9-abcde", "waypoint-6b9f7c7d9-abcde", ABSENT, ABSENT],
    "k8s.deployment.name": ["reviews", "reviews-v1", ABSENT, ABSENT],
}
SERVICES = ["waypoint.default", "reviews.default", "bookinfo-waypoint.bookinfo", "reviews", ""]
NAMES = ["reviews.default.svc.cluster.local:9080/*", "api.example.com:443/x", "op"]

# Pod IPs a directory may know: workloads, one of them a waypoint's.
DIRECTORY_ENTRIES = {
    "10.42.0.7": Endpoint("default", "productpage", "productpage-v1"),
    "10.42.0.8": Endpoint("default", "reviews", "reviews-v2", principal="spiffe://x/sa/reviews"),
    "10.42.0.6": Endpoint("bookinfo", "ratings", "ratings-v1"),
    "10.42.0.9": Endpoint("default", "waypoint", "waypoint", kind=NodeKind.WAYPOINT),
    "fd00::7": Endpoint("default", "productpage", "productpage-v1"),
}
SEED_ALIASES = [
    Alias("default", "reviews", "reviews-canon", AliasSource.KUBERNETES),
    Alias("default", "reviews-v1", "reviews-canon", AliasSource.SPAN),
    Alias("bookinfo", "ratings", "ratings-canon", AliasSource.SPAN),
]


class FakeDirectory:
    def __init__(self, by_ip: dict[str, Endpoint]) -> None:
        self.by_ip = by_ip

    def lookup(self, ip: str) -> Endpoint | None:
        return self.by_ip.get(ip)


def _pick(rng: random.Random, values: dict[str, list[Any]]) -> dict[str, AttrValue]:
    drawn = {key: rng.choice(choices) for key, choices in values.items()}
    return {key: value for key, value in drawn.items() if value is not ABSENT}


def span_spec(rng: random.Random, routes: list[dict[str, Any]]) -> dict[str, Any]:
    """One span: mostly a waypoint span of one of the stream's routes, some app client/server
    spans; ids from a small range so that parents, children, siblings and collisions happen."""
    route = rng.choice(routes)
    return {
        "shape": rng.choice(["waypoint"] * 6 + ["client", "server"]),
        "trace": rng.choice([b"\x01" * 16, b"\x02" * 16]),
        "span_id": rng.randint(1, 12),
        "parent": rng.choice([0, 0, *range(1, 13)]),
        "attrs": {**route["attrs"], **_pick(rng, PER_SPAN_VALUES)},
        "resource": route["resource"],
        "service": route["service"],
        "name": route["name"],
        "error": rng.random() < 0.2,
        "app": rng.choice(["productpage", "reviews", "reviews-otel"]),  # an app span's service.name
    }


def stream_of(rng: random.Random) -> list[tuple[list[dict[str, Any]], int, bool]]:
    """Batches of spans, each with a clock step (s) and whether expiry runs after it; the spans
    of a stream take a few routes, so memo entries are hit, forgotten and derived again. Drawn
    from hypothesis' own `Random` (many small choices; a strategy per attribute was ~10x slower
    to draw), so a failure still replays and shrinks."""
    first = {
        "attrs": _pick(rng, ROUTE_VALUES),
        "resource": _pick(rng, RESOURCE_VALUES),
        "service": rng.choice(SERVICES),
        "name": rng.choice(NAMES),
    }
    routes = [first]
    for _ in range(rng.randint(0, 3)):  # near twins: one or two values of the first redrawn
        attrs, resource = dict(first["attrs"]), dict(first["resource"])
        for key in rng.sample(sorted(ROUTE_VALUES), rng.randint(1, 2)):
            attrs[key] = rng.choice(ROUTE_VALUES[key])
            if attrs[key] is ABSENT:
                del attrs[key]
        if rng.random() < 0.3:
            resource = _pick(rng, RESOURCE_VALUES)
        routes.append({**first, "attrs": attrs, "resource": resource})
    return [
        (
            [span_spec(rng, routes) for _ in range(rng.randint(1, 10))],
            rng.randint(0, 12),
            rng.random() < 0.5,
        )
        for _ in range(rng.randint(1, 6))
    ]


def build(spec: dict[str, Any], end_s: float) -> Any:
    shape = spec["shape"]
    if shape == "waypoint":
        return waypoint_span(
            spec["span_id"],
            spec["parent"],
            trace=spec["trace"],
            service=spec["service"],
            end_s=end_s,
            error=spec["error"],
            attrs=spec["attrs"],
            resource={**spec["resource"], "service.name": spec["service"]},
            name=spec["name"],
        )
    app = spec["app"]
    kind = SpanKind.CLIENT if shape == "client" else SpanKind.SERVER
    attrs = {k: v for k, v in spec["attrs"].items() if k in ("peer.address", "http.status_code")}
    resource = {"service.name": app, **spec["resource"]}
    return span(
        kind,
        spec["span_id"],
        spec["parent"],
        trace=spec["trace"],
        service=app,
        end_s=end_s,
        attrs=attrs,
        resource=resource,
    )


worlds = st.fixed_dictionaries(
    {
        "waypoint_names": st.sets(st.sampled_from(["waypoint", "bookinfo-waypoint", "reviews"])),
        "directory": st.none()
        | st.dictionaries(st.sampled_from(sorted(DIRECTORY_ENTRIES)), st.just(None)).map(
            lambda d: {ip: DIRECTORY_ENTRIES[ip] for ip in d}
        ),
        "aliases": st.lists(st.sampled_from(SEED_ALIASES), unique=True),
        "memo_max": st.sampled_from([1, 2, 3, 5, 4096]),  # the memos whose misses learn
        "ends_max": st.sampled_from([1, 3, 4096]),
        "max_items": st.integers(1, 8),
    }
)


def identity_state(identity: NodeIdentity) -> tuple[Any, ...]:
    return (
        identity.aliases(),
        identity.waypoints(),
        identity._gateways,
        {key: sorted(names) for key, names in identity._pending.items()},
        [(key, list(pods.items())) for key, pods in identity.waypoint_span_zones._pods.items()],
        identity.generation,
        identity.drain_new(),
    )


def correlator(world: dict[str, Any]) -> SpanCorrelator:
    names = frozenset(world["waypoint_names"])
    directory = FakeDirectory(world["directory"]) if world["directory"] is not None else None
    identity = NodeIdentity(aliases=world["aliases"], waypoints=names)
    return SpanCorrelator(
        wait_s=20, max_items=world["max_items"], bucket_s=60, directory=directory, identity=identity
    )


def run_stream(c: SpanCorrelator, stream: list[Any]) -> list[list[L7Observation]]:
    out = []
    now_s = 100.0
    for specs, step_s, expire in stream:
        now_s += step_s
        out.append(c.add([build(spec, now_s) for spec in specs], int(now_s * S)))
        if expire:
            out.append(c.expire(int(now_s * S)))
    out.append(c.drain())
    return out


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds, st.randoms(use_true_random=False))
def test_memoised_waypoint_rules_match_the_plain_ones(
    world: dict[str, Any], rng: random.Random
) -> None:
    stream = stream_of(rng)
    size = world["memo_max"]
    with (
        patch.object(normalize, "_CACHE_MAX", size),
        patch.object(normalize, "_PEER_TAG_CACHE_MAX", size),
        patch.object(normalize, "_WAYPOINT_ENDS_MAX", world["ends_max"]),
    ):
        fast, plain = correlator(world), correlator(world)
    plain._waypoint_obs = plain._waypoint_obs_plain  # type: ignore[method-assign]
    assert run_stream(fast, stream) == run_stream(plain, stream)
    assert (fast.stats, fast.evicted, fast.expired) == (plain.stats, plain.evicted, plain.expired)
    assert identity_state(fast.identity) == identity_state(plain.identity)


BENCH_ATTRS: dict[str, AttrValue] = {
    "node_id": WP_NODE,
    "zone": "",
    "upstream_cluster": "inbound-vip|9080|http|reviews.default.svc.cluster.local",
    "upstream_cluster.name": "inbound-vip|9080|http|reviews.default.svc.cluster.local",
    "upstream_address": "10.42.0.8:9080",
    "component": "proxy",
    "istio.canonical_service": "waypoint",
    "istio.namespace": "default",
}


def test_spans_of_one_route_share_one_memo_entry_whatever_their_peer() -> None:
    norm = SpanNormalizer()
    one = waypoint_span(1, attrs={**BENCH_ATTRS, "peer.address": "10.42.0.7:5555"})
    two = waypoint_span(2, attrs={**BENCH_ATTRS, "peer.address": "10.42.0.8:4444"})
    first = norm.waypoint_ends(one)
    assert first is not None
    assert (first.target, first.via) == (Endpoint("default", "reviews"), "default/waypoint")
    assert norm.waypoint_ends(two) is first


def test_a_target_named_by_the_chosen_pod_takes_the_plain_rules() -> None:
    norm = SpanNormalizer(directory=FakeDirectory(DIRECTORY_ENTRIES))
    encap = waypoint_span(1, attrs={**BENCH_ATTRS, "upstream_cluster": "encap"})
    assert norm.waypoint_ends(encap) is None


def test_the_directory_refines_each_span_of_a_memoised_route() -> None:
    norm = SpanNormalizer(directory=FakeDirectory(DIRECTORY_ENTRIES))
    to_v2 = waypoint_span(1, attrs=BENCH_ATTRS)
    elsewhere = waypoint_span(2, attrs={**BENCH_ATTRS, "upstream_address": "10.9.9.9:9080"})
    ends = norm.waypoint_ends(to_v2)
    assert ends is not None and ends.refine
    assert norm.waypoint_ends(elsewhere) is ends
    assert norm.refined_target(to_v2, ends).workload == "reviews-v2"
    assert norm.refined_target(elsewhere, ends) == Endpoint("default", "reviews")


def differential(world: dict[str, Any], stream: Any) -> SpanCorrelator:
    """Run `stream` through both paths, assert they agree, return the memoised one."""
    with (
        patch.object(normalize, "_CACHE_MAX", world["memo_max"]),
        patch.object(normalize, "_PEER_TAG_CACHE_MAX", world["memo_max"]),
    ):
        fast, plain = correlator(world), correlator(world)
    plain._waypoint_obs = plain._waypoint_obs_plain  # type: ignore[method-assign]
    assert run_stream(fast, stream) == run_stream(plain, stream)
    assert identity_state(fast.identity) == identity_state(plain.identity)
    return fast


WORLD: dict[str, Any] = {
    "waypoint_names": set(),
    "directory": None,
    "aliases": [],
    "memo_max": 4096,
    "max_items": 8,
}


def waypoint_spec(span_id: int, **attrs: AttrValue) -> dict[str, Any]:
    route = {"node_id": WP_NODE, "upstream_cluster": BENCH_ATTRS["upstream_cluster"]}
    return {
        "shape": "waypoint",
        "trace": b"\x01" * 16,
        "span_id": span_id,
        "parent": 0,
        "attrs": {**route, **attrs},
        "resource": {},
        "service": "waypoint.default",
        "name": "op",
        "error": False,
        "app": "",
    }


def test_a_zone_is_learned_again_on_a_hit_after_the_waypoint_memo_forgot_it() -> None:
    # The waypoint memo holds one entry: each zone's span pushes the other's out, so the plain
    # rules learn the pod's zone again on every span; the memoised ones must too.
    a, b = waypoint_spec(1, zone="zone-a"), waypoint_spec(2, zone="zone-b")
    stream = [([a], 1, False), ([b], 1, False), ([{**a, "span_id": 3}], 1, False)]
    fast = differential({**WORLD, "memo_max": 1}, stream)
    assert fast.identity.waypoint_span_zone("default", "waypoint") == "zone-a"


def test_an_otel_name_waiting_on_the_routes_service_is_learned_on_a_hit() -> None:
    # The cluster's Service equals the tags' canonical service, so the alias the rules learn on
    # every span changes nothing (no new generation) until an app span leaves an OTel name
    # waiting on that workload: the next waypoint span's alias then resolves it.
    tags = {
        "istio.destination_namespace": "default",
        "istio.destination_canonical_service": "reviews",
    }
    app = {
        **waypoint_spec(4),
        "shape": "server",
        "app": "reviews-otel",
        "resource": {"k8s.namespace.name": "default", "k8s.deployment.name": "reviews"},
    }
    stream = [([waypoint_spec(1, **tags)], 1, False), ([app, waypoint_spec(2, **tags)], 1, False)]
    fast = differential(WORLD, stream)
    assert fast.identity.resolve("default", "reviews-otel") == "reviews"


def test_a_hit_names_the_target_as_identity_does_now() -> None:
    # An app span teaches that `reviews` is an OTel name of the workload whose canonical service
    # is reviews-canon: the route's memoised target must follow.
    seed = Alias("default", "reviews-v1", "reviews-canon", AliasSource.SPAN)
    app = {
        **waypoint_spec(4),
        "shape": "server",
        "app": "reviews",
        "resource": {"k8s.namespace.name": "default", "k8s.deployment.name": "reviews-v1"},
    }
    stream = [([waypoint_spec(1)], 1, False), ([app, waypoint_spec(2)], 1, False)]
    fast = differential({**WORLD, "aliases": [seed]}, stream)
    assert [
        obs.target.service for obs in run_stream(fast, [([waypoint_spec(3)], 1, False)])[0]
    ] == ["reviews-canon"]
