"""deploy/otel-collector: trace-id load balancing onto the headless Service of the postgres overlay."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.manifests import DEPLOY, build, only

CONFIG: dict[str, Any] = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())


def test_the_exporter_routes_by_trace_id_to_the_headless_service() -> None:
    exporter = CONFIG["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "traceID"
    assert "otlp" in exporter["protocol"]
    resolver = exporter["resolver"]["k8s"]
    headless = only(build("postgres"), "Service", resolver["service"].split(".")[0])
    assert headless["spec"]["clusterIP"] == "None"
    assert (
        resolver["service"] == f"{headless['metadata']['name']}.{headless['metadata']['namespace']}"
    )
    assert resolver["ports"] == [p["port"] for p in headless["spec"]["ports"]]


def test_otlp_in_batched_out_and_every_component_defined() -> None:
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"grpc", "http"}
    (pipeline,) = CONFIG["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    assert pipeline["processors"][0] == "memory_limiter"  # first, as the Collector docs ask
    assert pipeline["exporters"] == ["loadbalancing"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(CONFIG[kind]), kind
    assert set(CONFIG["service"]["extensions"]) <= set(CONFIG["extensions"])


def test_the_collector_manifests_mount_this_config_and_may_watch_endpoints() -> None:
    resources = build("otel-collector")
    config_map = only(resources, "ConfigMap")
    assert yaml.safe_load(config_map["data"]["config.yaml"]) == CONFIG
    deployment = only(resources, "Deployment", "otel-collector")
    spec = deployment["spec"]["template"]["spec"]
    (volume,) = spec["volumes"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (collector,) = spec["containers"]
    assert "contrib" in collector["image"]  # the loadbalancing exporter is not in the core build
    role = only(resources, "Role")
    watched = {r for rule in role["rules"] for r in rule["resources"]}
    assert watched == {"endpoints", "endpointslices"}
    assert {v for rule in role["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    binding = only(resources, "RoleBinding")
    assert binding["subjects"][0]["name"] == spec["serviceAccountName"]
    service = only(resources, "Service", "otel-collector")
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}
