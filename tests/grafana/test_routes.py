"""The simpod-json-datasource API under /grafana, served for real and fed by the simulated
bookinfo mesh (tests/grafana/conftest.py), with the request bodies Grafana sends.

Frames are checked against the Node Graph contract (grafana nodeGraph/utils.ts; see
/work/shared/reference/grafana-contracts.md §2) and against the simulator's truth.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.sim import Coverage
from tests.grafana.conftest import BUCKET_S, TICKS, Mesh, iso

DATA = Path(__file__).parents[1] / "data" / "grafana"
QUERY_REQUEST: dict[str, Any] = json.loads((DATA / "query_request.json").read_text())
EXPECTED_TARGETS = {
    "graph",
    "edges",
    "blind_spots",
    "new_edges",
    "annotations",
    "edge_request_rate",
    "edge_error_rate",
    "edge_latency_p50",
    "edge_latency_p95",
    "edge_latency_p99",
    "edge_tcp_bytes",
    "cost",
    "waypoint_advisor",
    "waypoint_detours",
}
PRODUCTPAGE = "bookinfo/productpage"


# ---- helpers -----------------------------------------------------------------------------------
def _no_constants(name: str) -> None:
    raise AssertionError(f"{name} in a JSON response: the DTO path cannot carry it")


def strict_json(text: str) -> Any:
    """Parse a response, refusing NaN/Infinity (Python's json would accept them)."""
    return json.loads(text, parse_constant=_no_constants)


def request_body(mesh: Mesh, targets: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """The realistic Grafana /query body with this run's range and the given targets."""
    body = copy.deepcopy(QUERY_REQUEST)
    body["range"] = mesh.range
    body["startTime"] = int(mesh.end_s * 1000)
    body["targets"] = targets
    body.update(overrides)
    return body


def target(name: str, payload: Any = None, ref_id: str = "A", **extra: Any) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "datasource": {"type": "simpod-json-datasource", "uid": "meshstitch"},
        "editorMode": "code",
        "target": name,
        "payload": {} if payload is None else payload,
        **extra,
    }


def query(mesh: Mesh, targets: list[dict[str, Any]], **overrides: Any) -> list[dict[str, Any]]:
    response = mesh.post("/query", request_body(mesh, targets, **overrides))
    assert response.status_code == 200, response.text
    frames = strict_json(response.text)
    assert isinstance(frames, list)
    for frame in frames:
        check_frame(frame)
    return frames


def check_frame(frame: dict[str, Any]) -> None:
    """A DataFrame DTO `toDataFrame` accepts: name, refId, typed fields of one length."""
    assert set(frame) <= {"name", "refId", "meta", "fields"}, frame.keys()
    assert isinstance(frame["name"], str) and isinstance(frame["refId"], str)
    assert "length" not in frame
    lengths = {len(f["values"]) for f in frame["fields"]}
    assert len(lengths) <= 1, {f["name"]: len(f["values"]) for f in frame["fields"]}
    kinds = {"string": str, "number": (int, float), "time": int, "boolean": bool}
    for f in frame["fields"]:
        assert f["type"] in kinds, f
        for value in f["values"]:
            assert value is None or isinstance(value, kinds[f["type"]]), (f["name"], value)
            if isinstance(value, float):
                assert math.isfinite(value)


def columns(frame: dict[str, Any]) -> dict[str, list[Any]]:
    return {f["name"]: f["values"] for f in frame["fields"]}


def column_rows(cols: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]


def rows(frame: dict[str, Any]) -> list[dict[str, Any]]:
    return column_rows(columns(frame))


def check_node_graph(frames: list[dict[str, Any]], ref_id: str = "A") -> tuple[dict, dict]:  # type: ignore[type-arg]
    """The Node Graph contract; returns the nodes and edges columns."""
    assert [f["name"] for f in frames] == ["nodes", "edges"]
    for frame in frames:
        assert frame["refId"] == ref_id
        assert frame["meta"]["preferredVisualisationType"] == "nodeGraph"
        assert all(f["name"] == f["name"].lower() for f in frame["fields"])
    nodes, edges = columns(frames[0]), columns(frames[1])
    assert {"id", "title", "subtitle", "mainstat", "secondarystat"} <= nodes.keys()
    assert {n for n in nodes if n.startswith("arc__")} and any(
        n.startswith("detail__") for n in nodes
    )
    assert {"id", "source", "target", "mainstat", "secondarystat", "thickness", "color"} <= (
        edges.keys()
    )
    assert {"strokedasharray"} <= edges.keys() and any(n.startswith("detail__") for n in edges)
    assert len(set(nodes["id"])) == len(nodes["id"])
    assert len(set(edges["id"])) == len(edges["id"])
    assert set(edges["source"]) | set(edges["target"]) <= set(nodes["id"])
    arcs = [values for name, values in nodes.items() if name.startswith("arc__")]
    for i, node_id in enumerate(nodes["id"]):
        parts = [a[i] for a in arcs]
        assert all(p is not None and 0 <= p <= 1 for p in parts), (node_id, parts)
        assert math.isclose(sum(parts), 1.0, abs_tol=1e-9), (node_id, parts)
    assert all(t is not None and t >= 1 for t in edges["thickness"])
    return nodes, edges


def served_pairs(edges: dict[str, list[Any]]) -> set[tuple[str, str]]:
    return set(zip(edges["source"], edges["target"], strict=True))


def truth_neighbourhood(mesh: Mesh, center: str, depth: int) -> set[tuple[str, str]]:
    """Downstream walk plus upstream walk, `depth` hops each (app/graph/neighbourhood.py)."""
    pairs = set(mesh.visible())
    found: set[tuple[str, str]] = set()
    for outgoing in (True, False):
        frontier, seen = {center}, {center}
        for _ in range(depth):
            hop = {p for p in pairs if (p[0] if outgoing else p[1]) in frontier}
            found |= hop
            frontier = {p[1] if outgoing else p[0] for p in hop} - seen
            seen |= frontier
    return found


# ---- Save & test, /metrics, /metric-payload-options --------------------------------------------
@pytest.mark.parametrize("path", ["", "/"])
def test_save_and_test_is_200_without_redirect(mesh: Mesh, path: str) -> None:
    response = httpx.get(f"{mesh.base_url}/grafana{path}", follow_redirects=False, timeout=30)
    assert response.status_code == 200, (response.status_code, response.headers)


@pytest.mark.parametrize(
    "body",
    [{}, {"metric": "", "payload": {}}, {"metric": "graph", "payload": {"namespace": ["x"]}}],
)
def test_metrics_lists_every_target_with_its_payloads(mesh: Mesh, body: dict[str, Any]) -> None:
    response = mesh.post("/metrics", body)
    assert response.status_code == 200, response.text
    configs = strict_json(response.text)
    assert {c["value"] for c in configs} == EXPECTED_TARGETS
    for config in configs:
        assert config["label"]
        names = [p["name"] for p in config["payloads"]]
        assert len(names) == len(set(names))
        assert {"namespace", "service", "coverage"} <= set(names)
        for payload in config["payloads"]:
            assert payload.get("type", "input") in {"select", "multi-select", "input", "textarea"}
            for option in payload.get("options", []):
                assert set(option) == {"label", "value"}
    graph = next(c for c in configs if c["value"] == "graph")
    assert {"depth", "direction", "level"} <= {p["name"] for p in graph["payloads"]}


def test_every_select_without_options_is_answered_by_metric_payload_options(mesh: Mesh) -> None:
    configs = mesh.post("/metrics", {}).json()
    asked = 0
    for config in configs:
        for payload in config["payloads"]:
            if payload.get("type") in {"select", "multi-select"} and not payload.get("options"):
                # What the plugin's Builder sends (src/DataSource.ts listMetricPayloadOptions).
                body = {"metric": config["value"], "payload": {}, "name": payload["name"]}
                response = mesh.post("/metric-payload-options", body)
                assert response.status_code == 200, response.text
                options = response.json()
                assert options and all(set(o) == {"label", "value"} for o in options)
                asked += 1
    assert asked
    namespaces = mesh.post(
        "/metric-payload-options", {"metric": "graph", "payload": {}, "name": "namespace"}
    ).json()
    assert {"label": "bookinfo", "value": "bookinfo"} in namespaces


# ---- /query: the graph target --------------------------------------------------------------------
def test_graph_from_the_dashboard_request_is_productpages_neighbourhood(mesh: Mesh) -> None:
    body = request_body(mesh, QUERY_REQUEST["targets"])  # the fixture's own graph target
    response = mesh.post("/query", body)
    assert response.status_code == 200, response.text
    frames = strict_json(response.text)
    for frame in frames:
        check_frame(frame)
    nodes, edges = check_node_graph(frames)
    assert served_pairs(edges) == truth_neighbourhood(mesh, PRODUCTPAGE, 1)
    assert PRODUCTPAGE in nodes["id"]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_graph_with_a_code_mode_string_payload_follows_depth(mesh: Mesh, depth: int) -> None:
    # The dashboard's payload as the plugin would send it unparsed (older plugins, direct calls):
    # a JSON string, the multi-value namespace as a list, the custom variable as a string.
    payload = json.dumps({"namespace": ["bookinfo"], "service": PRODUCTPAGE, "depth": str(depth)})
    _, edges = check_node_graph(query(mesh, [target("graph", payload)]))
    assert served_pairs(edges) == truth_neighbourhood(mesh, PRODUCTPAGE, depth)


def test_whole_mesh_graph_equals_truth_with_dashed_blind_spots(mesh: Mesh) -> None:
    # "All" namespaces: the dashboard's allValue `[]`, and `$__all` as Builder mode sends it.
    for payload in ({"namespace": [], "service": []}, {"namespace": "$__all"}, {}):
        _, edges = check_node_graph(query(mesh, [target("graph", payload)]))
        truth = mesh.visible()
        assert served_pairs(edges) == set(truth)
        for row in column_rows(edges):
            edge = truth[(row["source"], row["target"])]
            assert row["detail__coverage"] == edge.coverage.value
            assert (row["strokedasharray"] != "") == (edge.coverage is Coverage.L4_ONLY)
            if edge.coverage is Coverage.L4_ONLY:
                assert row["detail__error_rate"] is None and row["detail__p99_ms"] is None
            if edge.has_l4:
                assert row["detail__tcp_bytes"] == edge.bytes_sent + edge.bytes_received


def test_graph_stats_match_truth(mesh: Mesh) -> None:
    nodes, edges = check_node_graph(query(mesh, [target("graph", {})]))
    by_edge = {
        (s, t): i for i, (s, t) in enumerate(zip(edges["source"], edges["target"], strict=True))
    }
    for key, edge in mesh.l7_edges().items():
        i = by_edge[key]
        assert edges["detail__error_rate"][i] == pytest.approx(edge.errors / edge.requests)
        assert edges["detail__p99_ms"][i] == pytest.approx(edge.p99_ms, rel=0.01)
        assert edges["detail__p50_ms"][i] == pytest.approx(edge.p50_ms, rel=0.01)
        rps = edge.requests / (TICKS * BUCKET_S)
        assert edges["mainstat"][i] == f"{rps:.2f} req/s"
    # Node arcs: the share of failed requests into the node, from the truth's L7 edges.
    for i, node_id in enumerate(nodes["id"]):
        into = [e for (_, t), e in mesh.l7_edges().items() if t == node_id]
        requests = sum(e.requests for e in into)
        failed = sum(e.errors for e in into) / requests if requests else 0.0
        assert nodes["arc__failed"][i] == pytest.approx(failed, abs=1e-6), node_id
        assert nodes["arc__success"][i] == pytest.approx(1 - failed, abs=1e-6), node_id


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ([{"key": "coverage", "operator": "=", "value": "l4_only"}], "l4_only"),
        ([{"key": "coverage", "operator": "=", "value": "full"}], "full"),
        # `!=` drops the edges that stay inside the namespace (`=` keeps the ones touching it).
        ([{"key": "namespace", "operator": "!=", "value": "bookinfo"}], "leaving"),
        ([{"key": "namespace", "operator": "=", "value": "external"}], "external"),
    ],
)
def test_ad_hoc_filters_apply_to_the_graph(
    mesh: Mesh, filters: list[dict[str, str]], keep: str
) -> None:
    frames = query(mesh, [target("graph", {})], filters=filters)
    _, edges = check_node_graph(frames)
    truth = mesh.visible()
    spaces = {k: {k[0].split("/")[0], k[1].split("/")[0]} for k in truth}
    if keep == "leaving":
        expected: set[tuple[str, str]] = {k for k in truth if spaces[k] != {"bookinfo"}}
    elif keep == "external":
        expected = {k for k in truth if "external" in spaces[k]}
    else:
        expected = {k for k, e in truth.items() if e.coverage.value == keep}
    assert expected
    assert served_pairs(edges) == expected


def test_service_ad_hoc_filter_narrows_the_graph_to_the_service(mesh: Mesh) -> None:
    filters = [{"key": "service", "operator": "=", "value": "bookinfo/ratings"}]
    _, edges = check_node_graph(query(mesh, [target("graph", {})], filters=filters))
    assert served_pairs(edges) == truth_neighbourhood(mesh, "bookinfo/ratings", 1)


# ---- /query: tables ----------------------------------------------------------------------------
def test_blind_spots_are_the_truths_l4_only_edges(mesh: Mesh) -> None:
    (frame,) = query(mesh, [target("blind_spots", {"namespace": ["bookinfo"]}, ref_id="B")])
    assert frame["name"] == "blind_spots" and frame["refId"] == "B"
    served = {(r["source"], r["target"]): r for r in rows(frame)}
    truth = {k: e for k, e in mesh.visible().items() if e.coverage is Coverage.L4_ONLY}
    assert set(served) == set(truth)
    for key, row in served.items():
        assert row["bytes"] == truth[key].bytes_sent + truth[key].bytes_received
        assert row["connections"] == truth[key].connections_opened
    volumes = [r["bytes"] for r in rows(frame)]
    assert volumes == sorted(volumes, reverse=True)


def test_edges_table_equals_truth(mesh: Mesh) -> None:
    (frame,) = query(mesh, [target("edges", {})])
    served = {(r["source"], r["target"]): r for r in rows(frame)}
    assert set(served) == set(mesh.visible())
    for key, edge in mesh.visible().items():
        assert served[key]["coverage"] == edge.coverage.value
        if edge.has_l7:
            assert served[key]["rps"] == pytest.approx(edge.requests / (TICKS * BUCKET_S))
        else:
            assert served[key]["rps"] is None


def test_new_edges_against_the_previous_window(mesh: Mesh) -> None:
    (frame,) = query(mesh, [target("new_edges", {})])
    assert frame["name"] == "new_edges"
    assert {(r["source"], r["target"]) for r in rows(frame)} == set(mesh.visible())
    # The last two ticks against the two before: nothing is new.
    half = {"from": iso(mesh.start_s + 2 * BUCKET_S), "to": iso(mesh.end_s)}
    (frame,) = query(mesh, [target("new_edges", {})], range=half)
    assert rows(frame) == []


# ---- /query: time series -----------------------------------------------------------------------
def series(mesh: Mesh, name: str, payload: Any = None) -> dict[tuple[str, str], list[Any]]:
    frames = query(mesh, [target(name, payload or {"top": 50})])
    out = {}
    buckets = [int(mesh.start_s + i * BUCKET_S) * 1000 for i in range(TICKS)]
    for frame in frames:
        assert [f["name"] for f in frame["fields"]] == ["Time", "Value"]
        assert [f["type"] for f in frame["fields"]] == ["time", "number"]
        cols = columns(frame)
        assert cols["Time"] == buckets
        source, _, dest = frame["name"].partition("->")
        out[(source, dest)] = cols["Value"]
    return out


def test_request_and_error_rate_series_per_bucket_equal_truth(mesh: Mesh) -> None:
    rates = series(mesh, "edge_request_rate")
    errors = series(mesh, "edge_error_rate")
    # Only edges with L7 evidence: a blind spot's request rate is unknown, not zero.
    assert set(rates) == set(errors) == set(mesh.l7_edges())
    for key, edge in mesh.l7_edges().items():
        assert len(edge.ticks) == TICKS
        for tick, rate, ratio in zip(edge.ticks, rates[key], errors[key], strict=True):
            assert rate * BUCKET_S == pytest.approx(tick.requests), key
            expected = tick.errors / tick.requests if tick.requests else None
            assert ratio == pytest.approx(expected), key


def test_latency_series_are_ordered_and_finite(mesh: Mesh) -> None:
    p50, p95, p99 = (series(mesh, f"edge_latency_{q}") for q in ("p50", "p95", "p99"))
    assert set(p50) == set(p95) == set(p99) == set(mesh.l7_edges())
    for key in p50:
        for a, b, c in zip(p50[key], p95[key], p99[key], strict=True):
            assert a is not None and a <= b <= c


def test_tcp_bytes_series_sum_to_truth(mesh: Mesh) -> None:
    tcp = series(mesh, "edge_tcp_bytes")
    with_l4 = {k: e for k, e in mesh.visible().items() if e.has_l4}
    assert set(tcp) == set(with_l4)
    for key, edge in with_l4.items():
        assert sum(v * BUCKET_S for v in tcp[key]) == pytest.approx(
            edge.bytes_sent + edge.bytes_received
        )


def test_top_limits_the_series_to_the_busiest_edges(mesh: Mesh) -> None:
    rates = series(mesh, "edge_request_rate", {"top": "1"})
    busiest = max(mesh.l7_edges().values(), key=lambda e: e.requests)
    assert set(rates) == {(busiest.source, busiest.target)}


# ---- /query: annotations -----------------------------------------------------------------------
def test_annotations_from_the_dashboard_annotation_query(mesh: Mesh) -> None:
    anno = target("annotations", {"namespace": ["bookinfo"], "service": []}, ref_id="Anno")
    (frame,) = query(mesh, [anno])
    assert frame["refId"] == "Anno"
    assert [f["name"] for f in frame["fields"]] == ["time", "timeEnd", "title", "text", "tags"]
    assert [f["type"] for f in frame["fields"]] == ["time", "time", "string", "string", "string"]
    events = rows(frame)
    for event in events:
        assert event["timeEnd"] > event["time"]
        assert event["title"] and event["text"] and event["tags"]
    # Every edge is new (the window before the run is empty); per the truth's ticks no edge
    # turned L4-only and an error spike is a bucket with ≥ 20 requests and ≥ 5 % errors.
    new = {e["title"].removeprefix("new edge ") for e in events if e["tags"] == "new_edge"}
    assert new == {f"{s}->{t}" for s, t in mesh.visible()}
    assert not [e for e in events if e["tags"] == "l4_only"]
    spikes = {
        (f"{edge.source}->{edge.target}", int(tick.start_s) * 1000)
        for edge in mesh.l7_edges().values()
        for tick in edge.ticks
        if tick.requests >= 20 and tick.errors / tick.requests >= 0.05
    }
    served = {
        (e["title"].partition(" errors ")[0], e["time"])
        for e in events
        if e["tags"] == "error_spike"
    }
    assert served == spikes


# ---- /query: the request as a whole -------------------------------------------------------------
def test_several_targets_hidden_and_placeholder_targets(mesh: Mesh) -> None:
    frames = query(
        mesh,
        [
            target("graph", {"service": PRODUCTPAGE}, ref_id="A"),
            target("blind_spots", {}, ref_id="B"),
            target("edges", {}, ref_id="C", hide=True),
            {"refId": "D", "datasource": {"type": "simpod-json-datasource", "uid": "x"}},
            target("", {}, ref_id="E"),
        ],
    )
    assert [(f["name"], f["refId"]) for f in frames] == [
        ("nodes", "A"),
        ("edges", "A"),
        ("blind_spots", "B"),
    ]


def test_no_targets_is_an_empty_array(mesh: Mesh) -> None:
    assert query(mesh, []) == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"targets": [target("nope")]}, 400, "unknown target"),
        ({"targets": [target("graph", "{not json")]}, 400, "payload is not valid JSON"),
        ({"targets": [target("graph", {"depth": "x"})]}, 400, "depth"),
        ({"targets": [target("graph", {"coverage": "half"})]}, 400, "half"),
        ({"targets": [target("graph", {"service": "bookinfo/nope"})]}, 404, "bookinfo/nope"),
        ({"targets": [target("graph", {"service": "productpag"})]}, 404, "productpage"),
        ({"targets": "graph"}, 400, "targets"),
        ({"range": {"from": "2019-11-22T10:00:00Z", "to": "2019-11-22T09:00:00Z"}}, 400, "range"),
    ],
)
def test_errors_are_non_2xx_with_a_message(
    mesh: Mesh, body: dict[str, Any], status: int, words: str
) -> None:
    full = request_body(mesh, [])
    full.update(body)
    response = mesh.post("/query", full)
    assert response.status_code == status, response.text
    message = response.json()["message"]
    assert isinstance(message, str) and words in message, message


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_a_body_that_is_not_a_json_object_is_a_400(mesh: Mesh, raw: bytes) -> None:
    for path in ("/query", "/metrics", "/variable", "/tag-values", "/metric-payload-options"):
        response = httpx.post(
            f"{mesh.base_url}/grafana{path}",
            content=raw,
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, (path, response.text)
        assert response.json()["message"], path


# ---- /variable, /tag-keys, /tag-values -----------------------------------------------------------
def variable(mesh: Mesh, payload: Any) -> list[str]:
    response = mesh.post("/variable", {"payload": payload, "range": mesh.range})
    assert response.status_code == 200, response.text
    values = response.json()
    assert all(v["__text"] == v["__value"] for v in values)
    return [v["__value"] for v in values]


def test_variables_from_truth(mesh: Mesh) -> None:
    services = {s.id for s in mesh.topology.services}
    workloads = {f"{s.namespace}/{w.name}" for s in mesh.topology.services for w in s.workloads}
    waypoints = {f"{w.namespace}/{w.name}" for w in mesh.topology.waypoints}
    assert "bookinfo" in variable(mesh, {"target": "namespaces"})
    assert set(variable(mesh, {"target": "services"})) == services
    # The dashboard's service variable: JSON format, the namespace variable as a list.
    assert set(variable(mesh, {"target": "services", "namespace": ["bookinfo"]})) == services
    assert variable(mesh, {"target": "services", "namespace": ["elsewhere"]}) == []
    assert set(variable(mesh, {"target": "workloads"})) <= workloads
    assert set(variable(mesh, {"target": "waypoints"})) == waypoints


def test_unknown_variable_query_is_a_400(mesh: Mesh) -> None:
    response = mesh.post("/variable", {"payload": {"target": "pods"}, "range": mesh.range})
    assert response.status_code == 400
    assert "namespaces" in response.json()["message"]


def test_tag_keys_and_values(mesh: Mesh) -> None:
    keys = mesh.post("/tag-keys", {}).json()
    assert {k["text"] for k in keys} == {"namespace", "service", "coverage"}
    assert all(k["type"] == "string" for k in keys)
    values = {
        key: {v["text"] for v in mesh.post("/tag-values", {"key": key}).json()}
        for key in ("namespace", "service", "coverage")
    }
    assert "bookinfo" in values["namespace"]
    assert {s.id for s in mesh.topology.services} <= values["service"]
    assert values["coverage"] == {"full", "l4_only", "l7_only"}
    unknown = mesh.post("/tag-values", {"key": "colour"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["message"]


# ---- Builder mode and multi-value variables -------------------------------------------------------
def test_builder_mode_regex_formatted_variables(mesh: Mesh) -> None:
    # Builder mode interpolates each payload value with Grafana's `regex` format
    # (src/DataSource.ts processPayload): one value escaped, several as `(a|b)`.
    one = target("graph", {"service": "bookinfo\\/ratings"}, editorMode="builder")
    _, edges = check_node_graph(query(mesh, [one]))
    assert served_pairs(edges) == truth_neighbourhood(mesh, "bookinfo/ratings", 1)
    several = {"service": "(bookinfo\\/ratings|bookinfo\\/details)", "namespace": ["(bookinfo)"]}
    _, edges = check_node_graph(query(mesh, [target("graph", several, editorMode="builder")]))
    expected = truth_neighbourhood(mesh, "bookinfo/ratings", 1) | truth_neighbourhood(
        mesh, "bookinfo/details", 1
    )
    assert served_pairs(edges) == expected


def test_several_services_give_their_neighbourhoods_together(mesh: Mesh) -> None:
    payload = {"service": ["bookinfo/ratings", "bookinfo/details"], "namespace": "[]"}
    _, edges = check_node_graph(query(mesh, [target("graph", payload)]))
    expected = truth_neighbourhood(mesh, "bookinfo/ratings", 1) | truth_neighbourhood(
        mesh, "bookinfo/details", 1
    )
    assert served_pairs(edges) == expected


@pytest.mark.parametrize("name", ["graph", "edges", "blind_spots"])
def test_a_limit_keeps_the_busiest_edges_and_says_what_it_left_out(mesh: Mesh, name: str) -> None:
    everything = query(mesh, [target(name, {})])
    edges_frame = everything[-1] if name == "graph" else everything[0]
    total = len(columns(edges_frame)["source"])
    assert total >= 3
    notices = edges_frame.get("meta", {}).get("notices", [])
    assert not any("busiest" in n["text"] for n in notices)

    limited = query(mesh, [target(name, {"limit": 2})])
    frame = limited[-1] if name == "graph" else limited[0]
    kept = column_rows(columns(frame))
    assert len(kept) == 2
    warnings = [n for n in frame["meta"]["notices"] if n["severity"] == "warning"]
    assert warnings and f"busiest 2 of {total} edges" in warnings[0]["text"]
    # The busiest: no left-out edge carries more requests (or, L4 only, more bytes) than a kept one.
    if name == "graph":
        nodes = set(columns(limited[0])["id"])
        assert {r["source"] for r in kept} | {r["target"] for r in kept} <= nodes
    else:

        def load(row: dict[str, Any]) -> tuple[float, float]:
            if name == "edges":
                return (row["rps"] or 0, row["tcp_bytes"] or 0)
            return (0, row["bytes"])

        ranked = sorted(map(load, column_rows(columns(edges_frame))), reverse=True)
        assert sorted(map(load, kept), reverse=True) == ranked[:2]


def test_a_bad_limit_is_a_message_grafana_shows(mesh: Mesh) -> None:
    response = mesh.post("/query", request_body(mesh, [target("graph", {"limit": "0"})]))
    assert response.status_code == 400
    assert "limit must be between 1 and 50000" in response.json()["message"]
