"""ztunnel pods from the Kubernetes API: `GET /api/v1/namespaces/<ns>/pods?labelSelector=app=ztunnel`.

Credentials: in-cluster (KUBERNETES_SERVICE_HOST/PORT, the service-account token and ca.crt), or
a kubeconfig file (current context: server, certificate-authority(-data), token/tokenFile or
client certificate). Only what httpx needs is read; exec/auth-provider plugins are not supported.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.poll.scrape import Target
from app.poll.target_state import ERROR, INVALID, TIMEOUT, TargetState

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


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class KubernetesDiscovery:
    """Lists Running ztunnel pods with an IP. A failed listing keeps the previous targets."""

    def __init__(
        self,
        access: KubeAccess,
        *,
        namespace: str,
        port: int,
        interval_s: float,
        timeout_s: float,
        started_s: float,
        label_selector: str = "app=ztunnel",
    ) -> None:
        self._access = access
        self._url = f"{access.server}/api/v1/namespaces/{namespace}/pods"
        self._selector, self._port, self._timeout_s = label_selector, port, timeout_s
        self._started_s = started_s
        self.state = TargetState(f"kubernetes:{namespace}/{label_selector}", interval_s)
        self.targets: list[Target] = []
        self._client: httpx.AsyncClient | None = None

    def restart_baseline(self, now_s: float) -> None:
        """Pods started before `now_s` are baselined on their first scrape (a new poll leader)."""
        self._started_s = now_s

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(verify=self._access.verify, timeout=self._timeout_s)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def discover(self, now_s: float) -> list[Target]:
        if not self.state.due(now_s):
            return self.targets
        try:
            response = await self._http().get(
                self._url, params={"labelSelector": self._selector}, headers=self._access.headers()
            )
            response.raise_for_status()
            pods = response.json().get("items") or []
            targets = []
            for pod in pods:
                status = pod.get("status") or {}
                ip = status.get("podIP")
                if status.get("phase") != "Running" or not ip:
                    continue
                host = f"[{ip}]" if ":" in ip else ip
                started = _parse_time(status.get("startTime"))
                # A pod that started after we began watching has only new traffic in its counters.
                late = started is not None and started > self._started_s
                targets.append(Target(f"http://{host}:{self._port}/metrics", late))
        except httpx.TimeoutException:
            self.state.failed(now_s, TIMEOUT, f"timed out after {self._timeout_s}s")
            return self.targets
        except httpx.HTTPError as exc:
            self.state.failed(now_s, ERROR, f"{type(exc).__name__}: {exc}")
            return self.targets
        except (ValueError, AttributeError, TypeError) as exc:
            self.state.failed(now_s, INVALID, f"unexpected pod list: {exc}")
            return self.targets
        self.state.succeeded(now_s)
        self.targets = targets
        return targets
