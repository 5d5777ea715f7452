"""A value the read side takes from the store at most every `ttl_s`: tables that change rarely
and that other replicas write (aliases, the store's first data), read once for many queries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadEvery(Generic[T]):
    """`read()` at most every `ttl_s`; a change written meanwhile shows within `ttl_s`.
    A `None` answer is not kept: what is not there yet is asked for again on the next call."""

    def __init__(self, read: Callable[[], T], ttl_s: float = 5.0) -> None:
        self._read, self._ttl_s = read, ttl_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._read_at = -float("inf")

    def get(self) -> T:
        now = time.monotonic()
        value = self._value
        if value is not None and now - self._read_at < self._ttl_s:
            return value
        with self._lock:
            if self._value is None or now - self._read_at >= self._ttl_s:
                self._value = self._read()
                self._read_at = now
            value = self._value
        return value

    def invalidate(self) -> None:
        self._read_at = -float("inf")
