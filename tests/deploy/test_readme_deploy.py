"""README "Deploy to a cluster" walks through deploy/ in the order a user applies it."""

from __future__ import annotations

import re

from tests.deploy.manifests import DEPLOY, ROOT

README = (ROOT / "README.md").read_text()
# Image → meshstitch (kustomize overlay) → Istio provider and Telemetry → Collector for scale-out
# → Prometheus scrape jobs → Grafana provisioning.
IN_ORDER = [
    "deploy/Dockerfile",
    "deploy/kubernetes/overlays/sqlite",
    "deploy/kubernetes/overlays/postgres",
    "deploy/istio/extension-provider.yaml",
    "deploy/istio/telemetry.yaml",
    "deploy/otel-collector/config.yaml",
    "deploy/prometheus/scrape-configs.yaml",
    "deploy/grafana/provisioning/datasources/meshstitch.yaml",
    "deploy/grafana/provisioning/dashboards/meshstitch.yaml",
    "deploy/grafana/dashboards/meshstitch.json",
]


def _section() -> str:
    assert "\n## Deploy to a cluster\n" in README
    return README.split("\n## Deploy to a cluster\n", 1)[1].split("\n## ", 1)[0]


def test_the_section_mentions_each_file_in_the_order_it_is_applied() -> None:
    section = _section()
    positions = []
    for path in IN_ORDER:
        assert f"`{path}" in section, path
        positions.append(section.index(path))
    assert positions == sorted(positions)


def test_every_deploy_path_the_section_names_exists() -> None:
    for path in set(re.findall(r"deploy/[\w./-]+", _section())):
        assert (ROOT / path.rstrip(".")).exists(), path


def test_the_build_command_uses_the_repository_root_as_context() -> None:
    assert "docker build -f deploy/Dockerfile" in _section()
    assert (DEPLOY / "Dockerfile").is_file()
