"""deploy/istio: the extension provider reaches the meshstitch Service; Telemetry enables tracing."""

from __future__ import annotations

from tests.deploy.manifests import DEPLOY, Resource, build, load_documents, only, validate

ISTIO = DEPLOY / "istio"


def _provider() -> Resource:
    (operator,) = load_documents(ISTIO / "extension-provider.yaml")
    validate(operator)
    assert operator["kind"] == "IstioOperator"
    (provider,) = operator["spec"]["meshConfig"]["extensionProviders"]
    return provider  # type: ignore[no-any-return]


def test_the_provider_points_at_the_meshstitch_grpc_port() -> None:
    provider = _provider()
    service = only(build("base"), "Service", "meshstitch")
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    grpc = next(p for p in service["spec"]["ports"] if p["appProtocol"] == "grpc")
    assert provider == {
        "name": "meshstitch",
        "opentelemetry": {
            "service": f"{name}.{namespace}.svc.cluster.local",
            "port": grpc["port"],
        },
    }


def test_telemetry_traces_a_namespace_and_one_waypoint_with_the_provider() -> None:
    telemetries = load_documents(ISTIO / "telemetry.yaml")
    for telemetry in telemetries:
        validate(telemetry)
        assert telemetry["apiVersion"] == "telemetry.istio.io/v1"
        (tracing,) = telemetry["spec"]["tracing"]
        assert tracing["providers"] == [{"name": _provider()["name"]}]
        assert 0 < tracing["randomSamplingPercentage"] <= 100
    namespace_wide = [t for t in telemetries if not t["spec"].keys() - {"tracing"}]
    targeted = [t for t in telemetries if "targetRefs" in t["spec"]]
    assert len(namespace_wide) == 1 and len(targeted) == 1
    (ref,) = targeted[0]["spec"]["targetRefs"]
    assert ref["group"] == "gateway.networking.k8s.io" and ref["kind"] == "Gateway"
    assert ref["name"]


def test_the_readme_shows_how_to_enrol_waypoints() -> None:
    text = (ISTIO / "README.md").read_text()
    assert "istioctl waypoint apply -n bookinfo --enroll-namespace" in text
    assert "istio.io/use-waypoint" in text
    assert "extension-provider.yaml" in text and "telemetry.yaml" in text
