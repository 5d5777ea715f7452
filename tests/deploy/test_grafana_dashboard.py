"""deploy/grafana: the dashboard asks only for what /grafana answers, from the provisioned uids."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.grafana.catalog import TARGETS
from app.grafana.requests import parse_payload, selection
from app.grafana.routes import build_grafana_router
from app.graph.queries import GraphQueries
from app.store.engine import create_store_engine
from app.store.schema import upgrade
from tests.deploy.manifests import DEPLOY, build, only

GRAFANA = DEPLOY / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "meshstitch.json").read_text())
PROVISIONED: dict[str, Any] = yaml.safe_load(
    (GRAFANA / "provisioning" / "datasources" / "meshstitch.yaml").read_text()
)
DATASOURCES = {ds["uid"]: ds for ds in PROVISIONED["datasources"]}
JSON_TYPE = "simpod-json-datasource"
# The variable queries POST /grafana/variable answers: the `kinds` mapping inside the route in
# app/grafana/routes.py (not importable). test_variables_are_answered_by_the_route asks the real
# route too, so this copy cannot drift unnoticed.
VARIABLE_TARGETS = {"namespaces", "services", "workloads", "waypoints"}
# What a variable expands to in a JSON payload (Grafana's `json` format, or the custom All value).
# What the plugin's code-mode payload interpolation inserts (simPod/GrafanaJsonDatasource
# src/DataSource.ts `cleanMatch`): Grafana's `json` format, then a quoted string is unquoted. So a
# single value arrives bare (`shop/cart`, `2`), a multi value as an array, a custom All value as is.
SAMPLE_VALUES = {
    "namespace": ['["shop"]', '["shop","payments"]', "[]"],
    "service": ["shop/cart", "[]"],
    "depth": ["2"],
}


def _panels() -> list[dict[str, Any]]:
    panels = []
    for panel in DASHBOARD["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows
    return panels


def _json_targets() -> list[dict[str, Any]]:
    targets = [t for p in _panels() for t in p.get("targets", []) if _is_json(t, p)]
    annotations = DASHBOARD["annotations"]["list"]
    targets += [
        a["target"] for a in annotations if a.get("datasource", {}).get("type") == JSON_TYPE
    ]
    return targets


def _is_json(target: dict[str, Any], panel: dict[str, Any]) -> bool:
    datasource = target.get("datasource") or panel.get("datasource") or {}
    return datasource.get("type") == JSON_TYPE


def _interpolations(text: str) -> Iterator[str]:
    """`text` with its $variables replaced in every combination of sample values."""
    names = sorted(set(re.findall(r"\$(\w+)", text)), key=len, reverse=True)
    assert set(names) <= set(SAMPLE_VALUES), f"unknown variables in {text!r}"
    for values in itertools.product(*(SAMPLE_VALUES[n] for n in names)):
        out = text
        for name, value in zip(names, values, strict=True):
            out = out.replace(f"${name}", value)
        yield out


def test_schema_version_and_stable_uid() -> None:
    assert DASHBOARD["schemaVersion"] == 41
    assert DASHBOARD["uid"] == "meshstitch"
    assert "id" not in DASHBOARD or DASHBOARD["id"] is None


def test_every_datasource_reference_is_provisioned() -> None:
    references = [p["datasource"] for p in _panels() if "datasource" in p]
    references += [
        t["datasource"] for p in _panels() for t in p.get("targets", []) if "datasource" in t
    ]
    references += [v["datasource"] for v in DASHBOARD["templating"]["list"] if "datasource" in v]
    references += [
        a["datasource"] for a in DASHBOARD["annotations"]["list"] if not a.get("builtIn")
    ]
    assert references
    for ref in references:
        assert ref["uid"] in DATASOURCES, ref
        assert DATASOURCES[ref["uid"]]["type"] == ref["type"], ref


def test_the_json_datasource_reaches_the_meshstitch_service() -> None:
    (json_ds,) = [d for d in DATASOURCES.values() if d["type"] == JSON_TYPE]
    service = only(build("base"), "Service", "meshstitch")
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert json_ds["url"] == f"http://{host}:{http['port']}/grafana"
    assert json_ds["access"] == "proxy"
    assert json_ds["jsonData"]["defaultEditorMode"] in {"code", "builder"}


def test_tempo_service_map_reads_the_provisioned_prometheus() -> None:
    (tempo,) = [d for d in DATASOURCES.values() if d["type"] == "tempo"]
    prometheus = DATASOURCES[tempo["jsonData"]["serviceMap"]["datasourceUid"]]
    assert prometheus["type"] == "prometheus"


def test_every_panel_target_is_a_catalog_target_with_a_valid_payload() -> None:
    targets = _json_targets()
    assert {t["target"] for t in targets} >= {
        "graph",
        "edge_request_rate",
        "edge_error_rate",
        "edge_latency_p99",
        "blind_spots",
        "cost",
        "waypoint_detours",
        "waypoint_advisor",
    }
    for target in targets:
        assert target["target"] in TARGETS, target["target"]
        for payload in _interpolations(target.get("payload", "")):
            selection(parse_payload(payload), [])  # raises on a payload the route would refuse


def test_the_node_graph_panel() -> None:
    (panel,) = [
        p for p in _panels() if any(t.get("target") == "graph" for t in p.get("targets", []))
    ]
    # Grafana's plugin id for the Node Graph panel (public/app/plugins/panel/nodeGraph).
    assert panel["type"] == "nodeGraph"
    assert panel["datasource"]["type"] == JSON_TYPE


def _variable_payloads() -> Iterator[tuple[str, dict[str, Any]]]:
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        if query["format"] == "json":
            for text in _interpolations(query["query"]):
                yield variable["name"], json.loads(text)
        else:
            yield variable["name"], {"target": query["query"]}


def test_variables_namespace_and_service_use_the_variable_route() -> None:
    names = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert {"namespace", "service"} <= names
    payloads = list(_variable_payloads())
    assert {name for name, _ in payloads} >= {"namespace", "service"}
    for _, payload in payloads:
        assert payload["target"] in VARIABLE_TARGETS


@pytest.fixture
def grafana_client(sqlite_url: str) -> Iterator[TestClient]:
    engine = create_store_engine(sqlite_url)
    upgrade(engine)
    app = FastAPI()
    app.include_router(build_grafana_router(GraphQueries(engine, 60), clock=lambda: 1_700_000_000))
    with TestClient(app) as client:
        yield client
    engine.dispose()


def test_variables_are_answered_by_the_route(grafana_client: TestClient) -> None:
    for name, payload in _variable_payloads():
        response = grafana_client.post("/grafana/variable", json={"payload": payload})
        assert response.status_code == 200, (name, response.text)


def test_panel_queries_are_answered_by_the_route(grafana_client: TestClient) -> None:
    rng = {"from": "2023-11-14T21:00:00Z", "to": "2023-11-14T22:00:00Z"}
    for target in _json_targets():
        for payload in _interpolations(target.get("payload", "")):
            body = {"range": rng, "targets": [{**target, "payload": payload}]}
            response = grafana_client.post("/grafana/query", json=body)
            # The store is empty, so a named service is unknown (404); a 400 would mean the route
            # refuses what the dashboard sends.
            if response.status_code == 404:
                assert "no node named" in response.json()["message"]
                continue
            assert response.status_code == 200, (target["target"], payload, response.text)
            assert isinstance(response.json(), list)


def test_the_dashboard_provider_loads_from_a_directory() -> None:
    provider_file = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "meshstitch.yaml").read_text()
    )
    (provider,) = provider_file["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
