"""Loopback ports for tests: a free port to hand to a server, or a socket already listening."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1, for a server that binds it itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket(backlog: int) -> socket.socket:
    """A socket on 127.0.0.1 that listens before the server starts, so clients connect at once
    and wait in the backlog: nothing polls or sleeps for readiness."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock
