from __future__ import annotations

import pytest

from app.graph.window import Window, WindowError, parse_duration_s, parse_instant_s, resolve_window

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("1h", 3600),
        ("30s", 30),
        ("1.5h", 5400),
        ("7d", 604800),
        ("500ms", 0.5),
        (" 2w ", 1209600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["15", "m", "-5m", "0m", "15 minutes", "1y", ""])
def test_bad_durations_explain_the_format(text: str) -> None:
    with pytest.raises(WindowError, match="duration"):
        parse_duration_s(text)


def test_rfc3339_instant() -> None:
    from datetime import UTC, datetime

    assert (
        parse_instant_s("2027-01-15T08:00:00Z")
        == datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()
    )
    assert (
        parse_instant_s("2027-01-15T08:00:00.250Z")
        == datetime(2027, 1, 15, 8, 0, 0, 250000, tzinfo=UTC).timestamp()
    )


def test_epoch_millis_and_offsets() -> None:
    assert parse_instant_s("1800000000000") == NOW
    assert parse_instant_s("2027-01-15T09:00:00+01:00") == parse_instant_s("2027-01-15T08:00:00Z")


@pytest.mark.parametrize("text", ["yesterday", "2027-01-15T08:00:00", "2027-13-01T00:00:00Z"])
def test_bad_instants(text: str) -> None:
    with pytest.raises(WindowError):
        parse_instant_s(text)


def test_resolve_window_forms() -> None:
    assert resolve_window(NOW) == Window(NOW - 900, NOW)
    assert resolve_window(NOW, window="1h") == Window(NOW - 3600, NOW)
    assert resolve_window(NOW, from_="1799990000000", to="1800000000000") == Window(
        1_799_990_000, NOW
    )
    assert resolve_window(NOW, from_="1799990000000") == Window(1_799_990_000, NOW)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "1h", "from_": "1"}, "either"),
        ({"to": "1800000000000"}, "from is required"),
        ({"from_": "1800000000000", "to": "1799000000000"}, "before"),
        ({"window": "60d"}, "longer"),
    ],
)
def test_resolve_window_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(WindowError, match=message):
        resolve_window(NOW, **kwargs)  # type: ignore[arg-type]


def test_bucket_range_takes_buckets_starting_inside_the_window() -> None:
    assert Window(90, 300).bucket_range(60) == (120, 300)
    assert Window(120, 300).bucket_range(60) == (120, 300)
