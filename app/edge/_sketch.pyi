# Stub of the C extension app/edge/_sketch.c (used by app/edge/sketch_codec.py).
from collections.abc import Sequence

def quantiles(
    parts: Sequence[bytes], qs: Sequence[float], gamma: float, /
) -> tuple[float | None, ...] | None: ...
def merge(a: bytes, b: bytes, /) -> bytes | None: ...
