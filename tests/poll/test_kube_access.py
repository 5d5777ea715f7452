"""Credentials for the Kubernetes API server."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.poll.kube_access import KubeConfigError, in_cluster_access


def test_in_cluster_credentials(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    access = in_cluster_access(
        {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path
    )
    assert access.server == "https://10.0.0.1:443" and access.headers() == {
        "Authorization": "Bearer tok"
    }
    with pytest.raises(KubeConfigError):
        in_cluster_access({}, tmp_path)
