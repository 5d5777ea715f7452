"""glibc malloc settings for `meshstitch serve`: few arenas, and freed heap handed back.

glibc gives threads their own malloc arenas (up to eight per core) and keeps the memory freed
in them for reuse: after a window-cache build or a big flush has freed hundreds of MiB, the
process still holds it, so RSS only ever grows (issue 18, bench/cardinality.py). Two arenas
(`MALLOC_ARENA_MAX=2`, as many Python services set) bound that per-thread spread; the GIL
serialises most allocation anyway. `malloc_trim(0)` returns the free pages of every arena to the
system. Off glibc (musl, macOS) both are no-ops: `glibc()` is None.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Mapping
from typing import Protocol

ARENA_MAX = 2
M_ARENA_MAX = -8  # glibc's <malloc.h>


class Libc(Protocol):
    def mallopt(self, param: int, value: int) -> int: ...

    def malloc_trim(self, pad: int) -> int: ...


def as_glibc(lib: object) -> Libc | None:
    """`lib` when it is glibc with `mallopt` and `malloc_trim`, else None."""
    try:
        mallopt, trim = lib.mallopt, lib.malloc_trim  # type: ignore[attr-defined]
        lib.gnu_get_libc_version  # type: ignore[attr-defined]  # noqa: B018 -- glibc, not musl
    except AttributeError:
        return None
    if isinstance(lib, ctypes.CDLL):
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lib  # type: ignore[return-value]


@functools.cache
def glibc() -> Libc | None:
    """This process's C library when it is glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return as_glibc(ctypes.CDLL(None))
    except OSError:
        return None


def _user_chose(environ: Mapping[str, str]) -> bool:
    # glibc read these when the process started; mallopt would override the user's choice.
    return "MALLOC_ARENA_MAX" in environ or "glibc.malloc.arena_max" in environ.get(
        "GLIBC_TUNABLES", ""
    )


def limit_arenas(environ: Mapping[str, str] | None = None) -> int | None:
    """At most `ARENA_MAX` malloc arenas, unless the user set `MALLOC_ARENA_MAX` (or the glibc
    tunable). Before worker threads start: arenas made earlier stay. The limit set, or None."""
    libc = glibc()
    if libc is None or _user_chose(os.environ if environ is None else environ):
        return None
    return ARENA_MAX if libc.mallopt(M_ARENA_MAX, ARENA_MAX) == 1 else None


def trim_heap() -> bool:
    """Hand the free pages of every arena back to the system (after a large state was rebuilt or
    dropped). True when some memory was released."""
    libc = glibc()
    return libc is not None and libc.malloc_trim(0) == 1
