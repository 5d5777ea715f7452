"""deploy/Dockerfile: small, non-root, read-only friendly, pinned by the lock; checked as text
(no Docker daemon in the test environment)."""

from __future__ import annotations

import json
import re

from app.cli import build_parser
from app.settings import Settings
from tests.deploy.manifests import DEPLOY, ROOT

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _all(keyword: str) -> list[str]:
    return [rest for k, rest in _instructions() if k == keyword]


def _env() -> dict[str, str]:
    env = {}
    for rest in _all("ENV"):
        env.update(dict(pair.split("=", 1) for pair in rest.split()))
    return env


def test_multi_stage_build_on_python_311_slim_pinned_by_the_lock() -> None:
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    stages = _all("FROM")
    assert len(stages) == 2 and all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    runs = " ".join(_all("RUN"))
    assert "pip wheel" in runs and "pip install --no-index" in runs
    assert runs.count("-c ") >= 2 and "requirements.lock" in runs


def test_runs_as_a_non_root_user_with_data_under_a_volume() -> None:
    (user,) = _all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it
    assert _all("VOLUME") == ['["/data"]']
    env = _env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["MESHSTITCH_DATABASE_URL"] == "sqlite:////data/meshstitch.db"


def test_ports_entrypoint_and_command_match_the_app() -> None:
    http_port = Settings.model_fields["http_port"].default
    grpc_port = Settings.model_fields["grpc_port"].default
    env = _env()
    assert int(env["MESHSTITCH_HTTP_PORT"]) == http_port
    assert int(env["MESHSTITCH_GRPC_PORT"]) == grpc_port
    (expose,) = _all("EXPOSE")
    assert expose.split() == [str(http_port), str(grpc_port)]
    assert json.loads(_all("ENTRYPOINT")[0]) == ["meshstitch"]
    (cmd,) = json.loads(_all("CMD")[-1])
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert cmd == "serve" and cmd in commands  # type: ignore[operator]


def test_healthcheck_is_python_getting_healthz() -> None:
    (check,) = _all("HEALTHCHECK")
    argv = json.loads(check.split("CMD", 1)[1])
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "<healthcheck>", "exec")
    assert "/healthz" in argv[2]


def test_migrations_are_copied_to_the_working_directory() -> None:
    # app/store/schema.py looks for ./migrations when the package is installed from a wheel.
    (workdir,) = _all("WORKDIR")[-1:]
    assert "COPY migrations ./migrations" in DOCKERFILE and workdir == "/app"
    assert (ROOT / "migrations" / "env.py").is_file()


def test_the_context_ignore_file_keeps_every_copied_path() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = set()
    for rest in _all("COPY"):
        if rest.startswith("--from"):
            continue
        sources.update(rest.split()[:-1])
    sources |= {"requirements.lock"}  # bind-mounted in the final stage
    assert {s.rstrip("/") for s in sources} <= kept
    for source in sources:
        assert (ROOT / source).exists(), source
