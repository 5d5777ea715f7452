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


@pytest.mark.parametrize(
    ("start", "end", "first_data", "observed"),
    [
        (600.0, 900.0, None, 600.0),  # aligned, nothing known about the store: the whole window
        (600.0, 900.0, 100.0, 600.0),  # data older than the window
        (600.0, 900.0, 850.0, 850.0),  # meshstitch's first data 50 s before the end
        (617.0, 917.0, None, 660.0),  # the bucket straddling the start is not read
        (617.0, 917.0, 640.0, 660.0),  # ... nor is the first data inside it
        (617.0, 917.0, 700.0, 700.0),
        (600.0, 900.0, 950.0, 600.0),  # nothing observed in the window: its own start
        (610.0, 640.0, None, 610.0),  # shorter than a bucket: no whole bucket to start from
    ],
)
def test_rates_start_where_the_window_could_be_observed(
    start: float, end: float, first_data: float | None, observed: float
) -> None:
    assert Window(start, end).observed_start(60, first_data) == observed
