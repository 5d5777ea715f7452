"""The web view (/ui) in a real headless Chromium against a meshstitch fed by the simulated mesh:
the graph shows the nodes and edges the API answers (which the accuracy tests hold to the
simulator's truth) with each coverage class's line style, a click on an edge shows its L7 and L4
evidence, an exemplar opens its trace, triage and coverage list what the API lists, the URL
carries the view's state, and the page logs no error and asks no origin but its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.settings import Settings
from app.sim import bookinfo
from app.sim.generate import generate_mesh
from app.sim.harness import RunningMeshstitch, SimulatedRun, aligned_start, serve_meshstitch
from app.sim.truth import Truth
from app.sim.zoned import zoned_bookinfo
from tests.ports import free_port
from tests.ui.browser import PageLog, chromium_page

TICK_S = 60.0
LINE_STYLE = {"full": "solid", "l4_only": "dashed", "l7_only": "dotted"}


@dataclass
class Fed:
    running: RunningMeshstitch
    truth: Truth

    @property
    def base(self) -> str:
        return self.running.base_url

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}{path}", params=params, timeout=60)
        response.raise_for_status()
        return response.json()


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        host="127.0.0.1",
        http_port=free_port(),
        grpc_port=free_port(),
        bucket_s=60,
        flush_interval_s=3600,  # flushed by the test
        **extra,
    )


def _feed(settings: Settings, topology: Any, ticks: int, seed: int) -> Iterator[Fed]:
    with serve_meshstitch(settings) as running:
        run = SimulatedRun(running, topology, seed=seed, protocol="grpc", tick_s=TICK_S)
        try:
            run.run_ticks(ticks, aligned_start(ticks, TICK_S, settings.bucket_s))
            assert run.settle(), running.pipeline.stats.last_flush_error
            yield Fed(running, run.sim.truth)
        finally:
            run.stop()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    settings = _settings(
        tmp_path_factory.mktemp("ui"), trace_url_template="https://tempo.example/trace/{trace_id}"
    )
    yield from _feed(settings, zoned_bookinfo(), ticks=3, seed=11)


def _ready(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def _rendered(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const cy = window.meshstitchGraph;
            return {
              nodes: cy.nodes().filter((n) => !n.isParent()).map((n) => ({
                id: n.id(), kind: n.data("kind"), parent: n.data("parent"),
                shape: n.style("shape") })),
              parents: cy.nodes().filter((n) => n.isParent()).map((n) => n.id()),
              edges: cy.edges().map((e) => ({
                id: e.id(), coverage: e.data("coverage"), via: e.data("via") || null,
                style: e.style("line-style"), label: e.data("label"),
                halo: parseFloat(e.style("line-outline-width")) })),
            };
        }"""
    )


def _click_edge(page: Any, edge_id: str) -> None:
    """A real mouse click on the edge's midpoint on the canvas."""
    box = page.locator("#cy").bounding_box()
    x, y = page.evaluate(
        "(id) => { const p = window.meshstitchGraph.getElementById(id).renderedMidpoint();"
        " return [p.x, p.y]; }",
        edge_id,
    )
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_selector(f'.edge-panel[data-edge="{edge_id}"]', timeout=10_000)


def _own_origin_only(fed: Fed, log: PageLog) -> None:
    origin = urlsplit(fed.base).netloc
    foreign = [u for u in log.requests if urlsplit(u).netloc not in {origin, ""}]
    assert foreign == [], foreign


def _clean(log: PageLog) -> None:
    assert log.console_errors == [] and log.page_errors == [], log


def test_graph_shows_the_api_graph_with_coverage_styles_and_edge_evidence(fed: Fed) -> None:
    api = fed.api("/graph", service="productpage", depth=2, window="1h")
    with chromium_page() as (page, log):
        _ready(page, f"{fed.base}/ui?service=productpage&depth=2&window=1h&refresh=0")
        shown = _rendered(page)

        assert {n["id"] for n in shown["nodes"]} == {n["id"] for n in api["nodes"]}
        assert {p.removeprefix("ns:") for p in shown["parents"]} == {
            n["namespace"] for n in api["nodes"]
        }
        by_id = {e["id"]: e for e in api["edges"]}
        assert {e["id"] for e in shown["edges"]} == set(by_id)
        for edge in shown["edges"]:
            assert edge["coverage"] == by_id[edge["id"]]["coverage"]
            assert edge["style"] == LINE_STYLE[edge["coverage"]], edge
            assert edge["via"] == by_id[edge["id"]]["via"]
            if edge["via"]:  # the collapsed waypoint as a badge on the edge
                assert f"⬡ {edge['via'].split('/')[1]}" in edge["label"]
        # The coverage each edge shows is the one the simulated mesh had on the wire.
        for edge in api["edges"]:
            truth = fed.truth.edges.get((edge["source"], edge["target"]))
            if truth is not None:
                assert edge["coverage"] == truth.observed_coverage, edge["id"]
        assert {"full", "l4_only"} <= {e["coverage"] for e in shown["edges"]}
        # Edges whose bytes cross a zone are drawn with a halo and say their share.
        crossing = {i for i, e in by_id.items() if e["zones"] and e["zones"]["cross_zone_bytes"]}
        assert crossing
        for edge in shown["edges"]:
            assert (edge["halo"] > 0) == (edge["id"] in crossing), edge
            if edge["id"] in crossing:
                assert "x-zone" in edge["label"]
        kinds = {n["kind"]: n["shape"] for n in shown["nodes"]}
        assert kinds["service"] != kinds["external"] and kinds["service"] != kinds["unknown"]

        edge = by_id["bookinfo/productpage->bookinfo/reviews"]
        _click_edge(page, edge["id"])
        panel = page.locator(".edge-panel")
        l7, l4 = panel.locator(".layer.l7").inner_text(), panel.locator(".layer.l4").inner_text()
        assert f"{edge['l7']['requests']:,}" in l7
        assert f"{edge['l7']['errors']:,}" in l7
        for code in edge["l7"]["status_codes"]:
            assert code in l7
        assert "p99" in l7 and "ms" in l7
        assert f"{edge['l4']['connections_opened']:,} opened" in l4
        assert edge["l4"]["principals"][0] in l4
        assert "via bookinfo/waypoint" in panel.inner_text()
        assert "Why this edge exists" in panel.inner_text()
        zones = panel.locator("section.zones").inner_text()
        assert "→ ⬡" in zones and "caused by the waypoint" in zones
        assert panel.locator("table.zone-paths tbody tr").count() == len(edge["zones"]["paths"])
        for key in edge["provenance"]["evidence"]:
            assert key in panel.inner_text()
        # The selection is in the URL, so a pasted link opens the same edge.
        assert parse_qs(urlsplit(page.url).query)["edge"] == [edge["id"]]

        # Exemplars: one opens the built-in trace view, the other link goes to the user's Tempo.
        assert edge["exemplars"]
        first = edge["exemplars"][0]["trace_id"]
        external = panel.locator(".external-trace-link").first.get_attribute("href")
        assert external == f"https://tempo.example/trace/{first}"
        panel.locator(".trace-link").first.click()
        page.wait_for_selector("table.hops tbody tr", timeout=30_000)
        assert urlsplit(page.url).path == f"/ui/traces/{first}"
        trace = fed.api(f"/traces/{first}")
        rows = page.locator("table.hops tbody tr")
        assert rows.count() == len(trace["hops"])
        hops_text = page.locator("table.hops").inner_text()
        for hop in trace["hops"]:
            assert f"{hop['source']} → {hop['target']}" in hops_text
        assert page.locator("table.dark-hops tbody tr").count() == len(trace["dark_hops"])
    _own_origin_only(fed, log)
    _clean(log)


def test_a_pasted_link_opens_the_same_view_and_controls_update_the_url(fed: Fed) -> None:
    edge_id = "bookinfo/reviews->bookinfo/ratings"
    with chromium_page() as (page, log):
        _ready(page, f"{fed.base}/ui?service=reviews&window=1h&refresh=0&edge={edge_id}")
        page.wait_for_selector(f'.edge-panel[data-edge="{edge_id}"]', timeout=10_000)
        assert page.input_value("#ctl-service") == "reviews"
        assert page.input_value("#ctl-window") == "1h"

        loads = int(page.get_attribute("#view", "data-loaded") or 0)
        page.select_option("#ctl-depth", "3")
        page.wait_for_function(
            f"() => Number(document.querySelector('#view').dataset.loaded) > {loads}"
        )
        query = parse_qs(urlsplit(page.url).query)
        assert query["depth"] == ["3"] and query["service"] == ["reviews"]
        assert query["refresh"] == ["0"] and page.inner_text("#pause") == "Resume"

        # Refresh on an interval, then pause it: the URL says which.
        page.select_option("#ctl-refresh", "5")
        loads = int(page.get_attribute("#view", "data-loaded") or 0)
        page.wait_for_function(
            f"() => Number(document.querySelector('#view').dataset.loaded) > {loads}",
            timeout=30_000,
        )
        assert parse_qs(urlsplit(page.url).query)["refresh"] == ["5"]
        page.click("#pause")
        assert parse_qs(urlsplit(page.url).query)["refresh"] == ["0"]

        # Type-ahead: the service picker offers the services /services lists.
        services = fed.api("/services", window="15m")["services"]
        page.wait_for_function(
            f"() => document.querySelectorAll('#service-names option').length === {len(services)}"
        )
    _own_origin_only(fed, log)
    _clean(log)


def test_triage_and_coverage_views_list_what_the_api_lists(fed: Fed) -> None:
    triage = fed.api("/triage", service="reviews", window="1h")
    coverage = fed.api("/coverage", window="1h")
    assert triage["findings"] and coverage["blind_spots"]
    with chromium_page() as (page, log):
        _ready(page, f"{fed.base}/ui/triage?service=reviews&window=1h")
        page.wait_for_selector("table.findings", timeout=30_000)
        rows = page.locator("table.findings tbody tr")
        assert rows.count() == len(triage["findings"])
        text = page.locator("table.findings").inner_text()
        for finding in triage["findings"]:
            assert finding["summary"] in text
        # A finding's edge opens the graph with that edge's evidence.
        named = next(f for f in triage["findings"] if f["edge"])
        page.locator("a.finding-edge", has_text=named["edge"]).first.click()
        page.wait_for_selector(f'.edge-panel[data-edge="{named["edge"]}"]', timeout=30_000)

        _ready(page, f"{fed.base}/ui/coverage?window=1h")
        page.wait_for_selector("table.blind-spots", timeout=30_000)
        assert page.locator("table.blind-spots tbody tr").count() == len(coverage["blind_spots"])
        text = page.locator("#coverage").inner_text()
        for spot in coverage["blind_spots"]:
            assert f"{spot['source']} → {spot['target']}" in text
        assert f"{coverage['l7_coverage_by_bytes'] * 100:.1f} %" in text
    _own_origin_only(fed, log)
    _clean(log)


def test_with_a_token_the_page_asks_once_and_sends_it_only_as_a_bearer_header(
    tmp_path: Path,
) -> None:
    token = "s3cret-token"
    settings = _settings(tmp_path, api_token=token)
    for fed in _feed(settings, bookinfo(), ticks=1, seed=3):
        with chromium_page() as (page, log):
            sent: list[tuple[str, str | None]] = []
            page.on(
                "request",
                lambda r, sent=sent: sent.append((r.url, r.headers.get("authorization"))),
            )
            page.goto(f"{fed.base}/ui?service=productpage&window=1h&refresh=0")
            page.wait_for_selector("#token-dialog[open]", timeout=30_000)
            page.fill("#token-input", token)
            page.click("#token-submit")
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            assert len(_rendered(page)["edges"]) > 0

            page.reload()  # asked once: the token is kept in this browser
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            assert page.locator("#token-dialog").count() == 0

            api_calls = [(u, a) for u, a in sent if "/ui" not in urlsplit(u).path]
            assert {urlsplit(u).path for u, _ in api_calls} >= {"/graph", "/services"}
            assert all(a == f"Bearer {token}" for _, a in api_calls), api_calls
            assert not any(token in u for u, _ in sent)
        _own_origin_only(fed, log)
        _clean(log)


def test_a_few_hundred_services_render_with_the_fast_layouts(tmp_path: Path) -> None:
    topology = generate_mesh(340, seed=4)
    for fed in _feed(_settings(tmp_path), topology, ticks=1, seed=4):
        api = fed.api("/graph", window="1h", limit=1000)
        assert len(api["nodes"]) > 300
        with chromium_page() as (page, log):
            _ready(page, f"{fed.base}/ui?window=1h&refresh=0")
            shown = _rendered(page)
            assert len(shown["nodes"]) == len(api["nodes"]) and shown["parents"] == []
            assert len(shown["edges"]) == len(api["edges"])
            assert page.get_attribute("#cy", "data-layout") == "concentric"
            assert "More than 300 nodes" in page.inner_text("#notice")
            for edge in shown["edges"]:
                assert edge["style"] == LINE_STYLE[edge["coverage"]]
            assert "l7_only" in {e["coverage"] for e in shown["edges"]}

            # One namespace of it: a hundred-odd nodes, layered without namespace boxes.
            namespace = fed.api("/graph", window="1h", namespace="ns-01")
            _ready(page, f"{fed.base}/ui?window=1h&refresh=0&namespace=ns-01")
            shown = _rendered(page)
            assert len(shown["nodes"]) == len(namespace["nodes"])
            expected = "grouped" if len(namespace["nodes"]) <= 80 else "layered"
            assert page.get_attribute("#cy", "data-layout") == expected
        _own_origin_only(fed, log)
        _clean(log)
