"""The CLI as users run it: real subprocesses, real ports, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import inspect

from app.store.engine import create_store_engine
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSTITCH_")}
    env.update({f"MESHSTITCH_{k.upper()}": v for k, v in settings.items()})
    return env


@contextmanager
def served(
    env: dict[str, str], command: str = "serve"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:  # uvicorn announces the bound socket once startup completed
            lines.append(line)
            if "Uvicorn running on" in line or "Application startup failed" in line:
                break
        assert any("Uvicorn running on" in line for line in lines), "".join(lines)
        yield proc, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        database_url=f"sqlite:///{tmp_path / 'db' / 'm.db'}",
        host="127.0.0.1",
        http_port=str(port),
        grpc_port=str(free_port()),
    )
    with served(env) as (proc, _):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200, ready.text
        assert (tmp_path / "db" / "m.db").exists(), (
            "the embedded SQLite file is created on first start"
        )
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a graceful shutdown, so the status is -SIGTERM.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        rest = proc.stdout.read()
        assert "meshstitch stopped" in rest, rest


def test_serve_refuses_a_postgres_that_is_behind_then_migrate_and_downgrade(pg_url: str) -> None:
    env = cli_env(
        database_url=pg_url,
        host="127.0.0.1",
        http_port=str(free_port()),
        grpc_port=str(free_port()),
    )
    refused = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "run `meshstitch migrate`" in refused.stderr

    migrated = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    engine = create_store_engine(pg_url)
    assert {"nodes", "edge_buckets", "exemplars", "trace_hops"} <= set(
        inspect(engine).get_table_names()
    )

    alembic = Path(sys.executable).with_name("alembic")
    down = subprocess.run(
        [str(alembic), "-c", "alembic.ini", "downgrade", "base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 0, down.stderr
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_settings_command_hides_secrets() -> None:
    env = cli_env(api_token="s3cret-token")
    out = subprocess.run(
        [sys.executable, "-m", "app", "settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "s3cret-token" not in out.stdout
    assert '"http_port": 8080' in out.stdout
