"""Real servers on 127.0.0.1 for transport tests: uvicorn in a thread, on a socket bound first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tests.ports import listening_socket


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Serve `app`, yield its base URL. The socket listens before uvicorn starts, so clients
    connect at once and wait in the backlog: nothing polls or sleeps for readiness."""
    sock = listening_socket(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
