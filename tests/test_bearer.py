"""The bearer-token check shared by REST, /grafana and both OTLP transports."""

from __future__ import annotations

import pytest

from app.bearer import bearer_matches

TOKEN = "s3cret-token"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Basic {TOKEN}", False),
        ("Bearer wrong", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
    ],
)
def test_bearer_matches(header: str | None, expected: bool) -> None:
    assert bearer_matches(header, TOKEN) is expected
