"""`meshstitch serve` runs uvicorn on uvloop and httptools (uvicorn[standard]), not asyncio/h11."""

from __future__ import annotations

import asyncio

import uvloop
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.cli import uvicorn_config
from app.settings import Settings


def test_serve_config_asks_for_httptools_and_uvloop() -> None:
    config = uvicorn_config(FastAPI(), Settings(database_url="sqlite://"))
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
