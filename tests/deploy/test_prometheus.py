"""deploy/prometheus: one job for meshstitch's /metrics, one for every ztunnel on :15020, one for
every waypoint pod's request metrics on :15020/stats/prometheus."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import skip_or_fail
from tests.deploy.manifests import DEPLOY, build, only

PATH = DEPLOY / "prometheus" / "scrape-configs.yaml"
CONFIG: dict[str, Any] = yaml.safe_load(PATH.read_text())
JOBS = {job["job_name"]: job for job in CONFIG["scrape_configs"]}


def _keeps(job: dict[str, Any]) -> dict[str, str]:
    return {
        ";".join(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }


def test_the_three_jobs_exist() -> None:
    assert set(JOBS) == {"meshstitch", "ztunnel", "waypoints"}


def test_the_waypoint_job_keeps_pods_by_the_label_meshstitch_discovers_them_by() -> None:
    from app.poll.discovery import WAYPOINT_SELECTOR
    from app.settings import Settings

    job = JOBS["waypoints"]
    label, _, value = WAYPOINT_SELECTOR.partition("=")
    meta = "__meta_kubernetes_pod_label_" + label.replace(".", "_").replace("/", "_")
    assert _keeps(job)[meta].replace("\\", "") == value
    defaults = Settings()
    assert job["metrics_path"] == defaults.waypoint_metrics_path
    address = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    assert address["replacement"].endswith(f":{defaults.waypoint_port}")
    # disjoint from the ztunnel job: waypoint pods are not app=ztunnel
    assert "__meta_kubernetes_pod_label_app" not in _keeps(job)


def test_the_meshstitch_job_scrapes_the_http_port_of_the_service() -> None:
    job = JOBS["meshstitch"]
    service = only(build("base"), "Service", "meshstitch")
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["namespaces"]["names"] == [service["metadata"]["namespace"]]
    assert job["metrics_path"] == "/metrics"
    keep = _keeps(job)["__meta_kubernetes_service_name;__meta_kubernetes_endpoint_port_name"]
    assert keep == f"{service['metadata']['name']};http"


def test_the_ztunnel_job_scrapes_port_15020_of_app_ztunnel_in_istio_system() -> None:
    job = JOBS["ztunnel"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd == {"role": "pod", "namespaces": {"names": ["istio-system"]}}
    assert _keeps(job)["__meta_kubernetes_pod_label_app"] == "ztunnel"
    address = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    assert address["replacement"].endswith(":15020")


@pytest.mark.prometheus
def test_promtool_accepts_the_jobs(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool (Debian package prometheus) is not installed")
        return
    # Debian's Prometheus is built without Kubernetes discovery; swap it for a static target so
    # promtool still checks everything else (relabel regexes, labels, paths).
    static = {
        "scrape_configs": [
            {
                **{k: v for k, v in job.items() if k != "kubernetes_sd_configs"},
                "static_configs": [{"targets": ["127.0.0.1:9"]}],
            }
            for job in CONFIG["scrape_configs"]
        ]
    }
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(static))
    result = subprocess.run(
        [promtool, "check", "config", str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
