"""Credentials for the Kubernetes API server: its URL, bearer token, CA and client certificate.

In-cluster (KUBERNETES_SERVICE_HOST/PORT, the service-account token and ca.crt), or a kubeconfig
file (current context: server, certificate-authority(-data), token/tokenFile or client
certificate). Only what httpx needs is read; exec/auth-provider plugins are not supported.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(Exception):
    pass


@dataclass
class KubeAccess:
    server: str
    token: str = ""
    verify: ssl.SSLContext | bool = True
    cert: tuple[str, str] | None = None
    _tmp: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def _data_file(data_b64: str, tmp: list[str]) -> str:
    with tempfile.NamedTemporaryFile("wb", delete=False, prefix="meshstitch-kube-") as f:
        f.write(base64.b64decode(data_b64))
    tmp.append(f.name)
    return f.name


def in_cluster_access(environ: dict[str, str] | None = None, sa_dir: Path = SA_DIR) -> KubeAccess:
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeConfigError("not in a cluster (KUBERNETES_SERVICE_HOST unset) and no kubeconfig")
    token = (sa_dir / "token").read_text().strip()
    ca = sa_dir / "ca.crt"
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca)) if ca.exists() else True
    )
    host = f"[{host}]" if ":" in host else host
    return KubeAccess(f"https://{host}:{port}", token=token, verify=verify)


def in_cluster_available(environ: dict[str, str] | None = None, sa_dir: Path = SA_DIR) -> bool:
    """In a pod whose service-account token is mounted (`automountServiceAccountToken`)."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").is_file()


def kubeconfig_access(path: str) -> KubeAccess:
    base = Path(path).parent
    try:
        config: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
        current = config.get("current-context") or next(iter(contexts), None)
        context = contexts[current] if current else {}
        clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
        users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
        cluster = clusters[context["cluster"]] if context else next(iter(clusters.values()))
        user = users.get(context.get("user", ""), {}) if context else {}
        server = str(cluster["server"]).rstrip("/")
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration, AttributeError) as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc!r}") from exc
    access = KubeAccess(server)

    def rel(p: str) -> str:
        return str(base / p) if not os.path.isabs(p) else p

    if cluster.get("insecure-skip-tls-verify"):
        access.verify = False
    elif cluster.get("certificate-authority-data"):
        access.verify = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif cluster.get("certificate-authority"):
        access.verify = ssl.create_default_context(cafile=rel(cluster["certificate-authority"]))
    if user.get("token"):
        access.token = str(user["token"])
    elif user.get("tokenFile"):
        access.token = Path(rel(user["tokenFile"])).read_text().strip()
    cert = user.get("client-certificate") and rel(user["client-certificate"])
    key = user.get("client-key") and rel(user["client-key"])
    if user.get("client-certificate-data"):
        cert = _data_file(user["client-certificate-data"], access._tmp)
    if user.get("client-key-data"):
        key = _data_file(user["client-key-data"], access._tmp)
    if cert and key:
        if isinstance(access.verify, ssl.SSLContext):
            access.verify.load_cert_chain(cert, key)
        else:
            ctx = ssl.create_default_context()
            if access.verify is False:
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.load_cert_chain(cert, key)
            access.verify = ctx
    return access


def access_from_settings(settings: Settings) -> KubeAccess:
    """MESHSTITCH_KUBECONFIG when set, else the pod's service account."""
    return kubeconfig_access(settings.kubeconfig) if settings.kubeconfig else in_cluster_access()
