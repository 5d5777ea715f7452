"""Every MESHSTITCH_* variable deploy/ sets is a real setting, and every deployment sets what it needs."""

from __future__ import annotations

import re

import pytest

from app.settings import Settings
from tests.deploy.manifests import DEPLOY, Resource, build, container, find, only

SETTINGS = {f"MESHSTITCH_{name.upper()}" for name in Settings.model_fields}
VARIABLE = re.compile(r"\bMESHSTITCH_[A-Z0-9_]+\b")
NEEDED = {"MESHSTITCH_DATABASE_URL", "MESHSTITCH_HTTP_PORT", "MESHSTITCH_GRPC_PORT"}


def test_every_variable_named_anywhere_in_deploy_is_a_setting() -> None:
    named: dict[str, set[str]] = {}
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for variable in VARIABLE.findall(path.read_text()):
            named.setdefault(variable, set()).add(str(path.relative_to(DEPLOY)))
    assert named, "deploy/ names no MESHSTITCH_ variable at all"
    unknown = {v: sorted(files) for v, files in named.items() if v not in SETTINGS}
    assert not unknown, f"not settings (app/settings.py): {unknown}"


def _effective_env(resources: list[Resource], spec: Resource) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env wins."""
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        config_map = only(resources, "ConfigMap", source["configMapRef"]["name"])
        env.update(config_map["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


@pytest.mark.parametrize("name", ["base", "sqlite", "postgres"])
def test_each_deployment_sets_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    resources = build(name)
    deployment = only(resources, "Deployment", "meshstitch")
    spec = container(deployment, "meshstitch")
    env = _effective_env(resources, spec)
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    assert set(env) >= NEEDED, NEEDED - set(env)
    for key, value in env.items():
        if value.startswith("secret:"):
            value = "postgresql://user:secret@db:5432/meshstitch"
        monkeypatch.setenv(key, value)
    settings = Settings()  # rejects a value of the wrong type or outside its range
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"http": settings.http_port, "grpc-otlp": settings.grpc_port}
    if name == "postgres":
        assert env["MESHSTITCH_DATABASE_URL"].startswith("secret:")
    else:
        assert settings.database_url == "sqlite:////data/meshstitch.db"
        mounts = {m["mountPath"] for m in spec["volumeMounts"]}
        assert "/data" in mounts


def test_the_migrate_init_container_sees_the_same_settings() -> None:
    resources = build("postgres")
    deployment = only(resources, "Deployment", "meshstitch")
    (migrate,) = deployment["spec"]["template"]["spec"]["initContainers"]
    server = container(deployment, "meshstitch")
    assert _effective_env(resources, migrate) == _effective_env(resources, server)


def test_no_secret_setting_sits_in_a_config_map() -> None:
    secrets = {"MESHSTITCH_API_TOKEN", "MESHSTITCH_OTLP_TOKEN", "MESHSTITCH_PROMETHEUS_PASSWORD"}
    for name in ["base", "sqlite", "postgres"]:
        for config_map in find(build(name), "ConfigMap"):
            assert not secrets & set(config_map["data"]), config_map["metadata"]["name"]
