# Stub of the C extension app/ingest/_otlp_wire.c (wrapped by app/ingest/otlp_wire.py).
from app.domain import Span

class WireError(ValueError): ...

class Decoder:
    def __init__(
        self,
        *,
        span_type: type[Span],
        slots: tuple[str, ...],
        kinds: tuple[object, ...],
        span_keys: tuple[tuple[str, bool], ...],
        resource_keys: tuple[tuple[str, bool], ...],
        service_key: str,
        reasons: tuple[str, ...],
        min_start_ns: int,
    ) -> None: ...
    def decode(
        self, body: bytes | bytearray | memoryview, max_attributes: int, max_end_ns: int, /
    ) -> tuple[list[Span], dict[str, int]]: ...
    def memo_size(self) -> int: ...
