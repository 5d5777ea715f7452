"""MESHSTITCH_OTLP_DECODER: which protobuf decoder runs, and what a missing extension means.

A missing extension is a real failed import: `sys.modules[name] = None` makes `import` raise
ImportError exactly as an unbuilt module does.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.ingest.decoder_choice import (
    DecoderUnavailable,
    describe_protobuf_decoder,
    select_protobuf_decoder,
)
from app.ingest.otlp_decode import decode_protobuf
from app.ingest.otlp_wire import decode_protobuf_compiled
from app.main import create_app
from app.settings import Settings
from tests.test_cli import cli_env

ROOT = Path(__file__).resolve().parents[2]
BLOCK_EXTENSION = "import sys; sys.modules['app.ingest._otlp_wire'] = None; "


@pytest.fixture
def extension_missing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import app.ingest

    monkeypatch.setitem(sys.modules, "app.ingest._otlp_wire", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "app.ingest.otlp_wire")
    for name in ("_otlp_wire", "otlp_wire"):  # `from app.ingest import x` reads these first
        monkeypatch.delattr(app.ingest, name)
    yield


def test_the_default_is_the_compiled_decoder() -> None:
    assert Settings().otlp_decoder == "compiled"
    chosen = select_protobuf_decoder("compiled")
    assert (chosen.name, chosen.decode) == ("compiled", decode_protobuf_compiled)
    assert select_protobuf_decoder("auto").name == "compiled"


def test_python_is_the_reference() -> None:
    chosen = select_protobuf_decoder("python")
    assert (chosen.name, chosen.decode) == ("python", decode_protobuf)


@pytest.mark.usefixtures("extension_missing")
def test_compiled_without_the_extension_refuses(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(DecoderUnavailable, match="MESHSTITCH_OTLP_DECODER=python"):
        select_protobuf_decoder("compiled")
    assert describe_protobuf_decoder("compiled").startswith("none: ")
    with caplog.at_level(logging.WARNING):
        assert select_protobuf_decoder("auto").name == "python"
    assert "compiled OTLP decoder unavailable" in caplog.text


@pytest.mark.parametrize("setting", ["compiled", "python"])
def test_readyz_names_the_decoder(setting: str) -> None:
    with TestClient(create_app(Settings(database_url="sqlite://", otlp_decoder=setting))) as client:
        part = client.get("/readyz").json()["parts"]["otlp_decoder"]
    assert part == {"ready": True, "protobuf": setting, "setting": setting}


def run_cli(code: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=cli_env(**settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_command_names_the_decoder_in_use() -> None:
    main = "from app.cli import main; sys.exit(main(['settings']))"
    out = run_cli("import sys; " + main, otlp_decoder="auto")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["otlp_decoder_in_use"] == "compiled"
    out = run_cli(BLOCK_EXTENSION + main, otlp_decoder="auto")
    assert json.loads(out.stdout)["otlp_decoder_in_use"] == "python"


def test_serve_refuses_to_start_without_the_compiled_decoder(tmp_path: Path) -> None:
    out = run_cli(
        BLOCK_EXTENSION + "from app.cli import main; sys.exit(main(['serve']))",
        database_url=f"sqlite:///{tmp_path}/m.db",
        http_port="0",
        grpc_port="0",
    )
    assert out.returncode == 2
    assert "MESHSTITCH_OTLP_DECODER=compiled but the compiled decoder is missing" in out.stderr


def test_both_decoders_serve_otlp_http_alike() -> None:
    from fastapi import FastAPI

    from app.ingest.otlp_http import build_otlp_http_router
    from app.ingest.sink import ListSink
    from tests.ingest.builders import NOW, T0, to_protobuf, waypoint_document

    bodies = [
        to_protobuf(waypoint_document(startTimeUnixNano=str(NOW), endTimeUnixNano=str(NOW + 1))),
        to_protobuf(waypoint_document(startTimeUnixNano=str(T0), spanId="0" * 16)),  # rejected
        b"\x0a\x05",  # corrupt
    ]
    answers = {}
    for setting in ("compiled", "python"):
        sink, app = ListSink(), FastAPI()
        app.include_router(build_otlp_http_router(sink, Settings(otlp_decoder=setting)))
        with TestClient(app) as client:
            posted = [
                client.post(
                    "/v1/traces", content=b, headers={"content-type": "application/x-protobuf"}
                )
                for b in bodies
            ]
        answers[setting] = ([(r.status_code, r.content) for r in posted], sink.spans)
    assert answers["compiled"] == answers["python"]
    assert [status for status, _ in answers["compiled"][0]] == [200, 200, 400]
    assert len(answers["compiled"][1]) == 1
