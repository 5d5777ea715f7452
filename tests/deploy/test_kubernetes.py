"""deploy/kubernetes: the kustomize base and overlays build, validate, and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.deploy.manifests import (
    DEPLOY,
    KUSTOMIZATIONS,
    build,
    container,
    find,
    load_documents,
    only,
    pod_spec,
    validate,
)

NAMESPACE = "meshstitch"


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_every_built_resource_validates(name: str) -> None:
    resources = build(name)
    assert resources
    for resource in resources:
        validate(resource)


def test_the_secret_example_validates_and_is_not_applied() -> None:
    (secret,) = load_documents(
        DEPLOY / "kubernetes" / "overlays" / "postgres" / "database-secret.example.yaml"
    )
    validate(secret)
    assert "CHANGE-ME" in secret["stringData"]["url"]
    assert not find(build("postgres"), "Secret")


@pytest.mark.parametrize("name", ["base", "sqlite", "postgres"])
def test_the_pod_is_locked_down(name: str) -> None:
    deployment = only(build(name), "Deployment", "meshstitch")
    spec = pod_spec(deployment)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec["containers"] + spec.get("initContainers", []):
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, c["name"]
        assert context["allowPrivilegeEscalation"] is False, c["name"]
        assert context["capabilities"]["drop"] == ["ALL"], c["name"]
        assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, c["name"]


@pytest.mark.parametrize("name", ["base", "sqlite", "postgres"])
def test_probes_and_ports(name: str) -> None:
    resources = build(name)
    server = container(only(resources, "Deployment", "meshstitch"), "meshstitch")
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert server["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"http": 8080, "grpc-otlp": 4317}
    service = only(resources, "Service", "meshstitch")
    assert {(p["port"], p["targetPort"], p["appProtocol"]) for p in service["spec"]["ports"]} == {
        (8080, "http", "http"),
        (4317, "grpc-otlp", "grpc"),
    }


@pytest.mark.parametrize("name", ["base", "sqlite", "postgres"])
def test_discovery_may_only_read_pods_in_istio_system(name: str) -> None:
    resources = build(name)
    assert not find(resources, "ClusterRole") and not find(resources, "ClusterRoleBinding")
    role = only(resources, "Role")
    assert role["metadata"]["namespace"] == "istio-system"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    binding = only(resources, "RoleBinding")
    assert binding["metadata"]["namespace"] == "istio-system"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    deployment = only(resources, "Deployment", "meshstitch")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": pod_spec(deployment)["serviceAccountName"],
            "namespace": NAMESPACE,
        }
    ]


@pytest.mark.parametrize("name", ["base", "sqlite", "postgres"])
def test_everything_else_lives_in_the_meshstitch_namespace(name: str) -> None:
    resources = build(name)
    assert only(resources, "Namespace")["metadata"]["name"] == NAMESPACE
    for r in resources:
        if r["kind"] not in {"Namespace", "Role", "RoleBinding"}:
            assert r["metadata"].get("namespace") == NAMESPACE, (r["kind"], r["metadata"])


def test_sqlite_overlay_is_one_replica_on_a_claim() -> None:
    resources = build("sqlite")
    deployment = only(resources, "Deployment", "meshstitch")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = only(resources, "PersistentVolumeClaim")
    (data,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "data"]
    assert data == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    mounts = {
        m["name"]: m["mountPath"] for m in container(deployment, "meshstitch")["volumeMounts"]
    }
    assert mounts["data"] == "/data"


def test_postgres_overlay_scales_out_safely() -> None:
    resources = build("postgres")
    deployment = only(resources, "Deployment", "meshstitch")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = only(resources, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    headless = only(resources, "Service", "meshstitch-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in headless["spec"]["ports"]} == {4317}


def test_postgres_overlay_migrates_before_serving_with_the_secret_url() -> None:
    (secret,) = load_documents(
        DEPLOY / "kubernetes" / "overlays" / "postgres" / "database-secret.example.yaml"
    )
    deployment = only(build("postgres"), "Deployment", "meshstitch")
    (migrate,) = pod_spec(deployment)["initContainers"]
    server = container(deployment, "meshstitch")
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == server["image"]
    expected = {
        "name": "MESHSTITCH_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": secret["metadata"]["name"], "key": "url"}},
    }
    assert expected in migrate["env"]
    assert expected in server["env"]
    assert not find(build("postgres"), "PersistentVolumeClaim")


def test_the_optional_pod_ips_component_grants_only_reading_pods_services_and_nodes(
    tmp_path: Path,
) -> None:
    """components/pod-ips (peer.address → workload, node identity) adds a cluster-wide read of
    pods and a list of Services and of nodes (their zones), nothing more."""
    import os
    import shutil
    import subprocess

    import yaml

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip_or_fail("kubectl is not installed (needed for `kubectl kustomize`)")
    up = os.path.relpath(DEPLOY / "kubernetes", tmp_path)  # kustomize refuses absolute roots
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{up}/overlays/sqlite]\ncomponents: [{up}/components/pod-ips]\n"
    )
    out = subprocess.run(
        [str(kubectl), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    resources = [d for d in yaml.safe_load_all(out.stdout) if d]
    role = only(resources, "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    ]
    binding = only(resources, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "meshstitch", "namespace": NAMESPACE}
    ]
