"""glibc malloc tuning: two arenas unless the user chose, freed heap handed back, a no-op off
glibc; and who calls it (serve before any thread, window-cache builds)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from app import malloc_tuning
from app.graph.window_cache import WindowCache
from app.malloc_tuning import ARENA_MAX, M_ARENA_MAX, as_glibc, limit_arenas, trim_heap
from app.settings import Settings


class FakeGlibc:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def gnu_get_libc_version(self) -> bytes:
        return b"2.36"

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


class FakeMusl:
    """musl has `mallopt` (a stub) but neither `malloc_trim` nor glibc's version call."""

    def mallopt(self, param: int, value: int) -> int:
        raise AssertionError("not glibc: never called")


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeGlibc:
    fake = FakeGlibc()
    monkeypatch.setattr(malloc_tuning, "glibc", lambda: fake)
    return fake


def test_two_arenas_and_a_trim_on_glibc(libc: FakeGlibc) -> None:
    assert limit_arenas({}) == ARENA_MAX == 2
    assert trim_heap()
    assert libc.calls == [("mallopt", M_ARENA_MAX, 2), ("malloc_trim", 0)]
    assert M_ARENA_MAX == -8  # glibc's <malloc.h>


@pytest.mark.parametrize(
    "environ",
    [
        {"MALLOC_ARENA_MAX": "8"},
        {"MALLOC_ARENA_MAX": ""},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=128:glibc.malloc.arena_max=4"},
    ],
)
def test_the_users_arena_setting_is_kept(libc: FakeGlibc, environ: dict[str, str]) -> None:
    assert limit_arenas(environ) is None
    assert libc.calls == []


def test_the_process_environment_is_read_by_default(
    libc: FakeGlibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    assert limit_arenas() is None and libc.calls == []
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert limit_arenas() == 2


def test_a_no_op_off_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    assert as_glibc(FakeMusl()) is None
    assert as_glibc(object()) is None
    fake = FakeGlibc()
    assert as_glibc(fake) is fake
    monkeypatch.setattr(malloc_tuning, "glibc", lambda: None)
    assert limit_arenas({}) is None
    assert trim_heap() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="this process's libc is not glibc")
def test_the_real_glibc_takes_the_calls() -> None:
    # In a process of its own: the arena limit is for the life of the process.
    code = (
        "from app.malloc_tuning import *; print(glibc() is not None, limit_arenas({}), trim_heap())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[:2] == ["True", "2"]


def test_serve_limits_arenas_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli
    from app.store import engine

    calls: list[str] = []

    def first_engine(url: str) -> None:
        calls.append("engine")
        raise RuntimeError("stop here")

    monkeypatch.setattr(cli, "limit_arenas", lambda: calls.append("limit_arenas"))
    monkeypatch.setattr(engine, "create_store_engine", first_engine)
    with pytest.raises(RuntimeError, match="stop here"):
        cli._serve(Settings())
    assert calls == ["limit_arenas", "engine"]


def test_a_window_cache_build_trims_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.graph import window_cache

    trims: list[int] = []
    monkeypatch.setattr(window_cache, "trim_heap", lambda: trims.append(1))
    cache = WindowCache(
        lambda conn, key: {},
        lambda conn, key: set(),
        lambda: pytest.fail("the build reads on the connection given"),
        lambda source, target, bucket: pytest.fail("no edges"),
    )
    cache.build(("service", 0, 60), conn=object())  # type: ignore[arg-type]
    assert trims == [1]
