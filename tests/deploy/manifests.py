"""Reading deploy/: YAML files, `kubectl kustomize` output, and schema validation of resources."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = {
    "base": DEPLOY / "kubernetes" / "base",
    "sqlite": DEPLOY / "kubernetes" / "overlays" / "sqlite",
    "postgres": DEPLOY / "kubernetes" / "overlays" / "postgres",
    "otel-collector": DEPLOY / "otel-collector",
}
# A version kubernetes-validate ships schemas for; old enough for any supported cluster.
KUBERNETES_VERSION = "1.32"

# Kinds kubernetes-validate has no schema for (Istio CRDs), checked by their required fields.
CRD_REQUIRED_FIELDS: dict[tuple[str, str], list[tuple[str, ...]]] = {
    ("install.istio.io/v1alpha1", "IstioOperator"): [
        ("metadata", "name"),
        ("spec", "meshConfig", "extensionProviders"),
    ],
    ("telemetry.istio.io/v1", "Telemetry"): [
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("spec", "tracing"),
    ],
}

Resource = dict[str, Any]


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def _kustomize(directory: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip_or_fail("kubectl is not installed (needed for `kubectl kustomize`)")
        raise AssertionError("unreachable")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def build(name: str) -> list[Resource]:
    """The resources `kubectl kustomize` renders for one of KUSTOMIZATIONS."""
    return [doc for doc in yaml.safe_load_all(_kustomize(KUSTOMIZATIONS[name])) if doc]


def find(resources: list[Resource], kind: str, name: str | None = None) -> list[Resource]:
    return [
        r
        for r in resources
        if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)
    ]


def only(resources: list[Resource], kind: str, name: str | None = None) -> Resource:
    found = find(resources, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def dig(resource: Resource, path: tuple[str, ...]) -> Any:
    value: Any = resource
    for key in path:
        assert isinstance(value, dict) and key in value, f"missing {'.'.join(path)}"
        value = value[key]
    return value


def validate(resource: Resource) -> None:
    """Strict Kubernetes schema validation, or the required fields of a known CRD."""
    key = (resource.get("apiVersion", ""), resource.get("kind", ""))
    if key in CRD_REQUIRED_FIELDS:
        for path in CRD_REQUIRED_FIELDS[key]:
            assert dig(resource, path), f"{key[1]} {'.'.join(path)} is empty"
        return
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise AssertionError(f"no schema and no CRD check for {key}: {exc}") from None
    except kubernetes_validate.ValidationError as exc:
        name = resource.get("metadata", {}).get("name")
        raise AssertionError(f"{key[1]} {name} is invalid: {exc.message}") from None


def pod_spec(workload: Resource) -> Resource:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(workload: Resource, name: str) -> Resource:
    matches = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert len(matches) == 1, f"no container {name}"
    return matches[0]
