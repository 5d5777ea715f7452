"""Which OTLP protobuf decoder ingest runs: the setting `otlp_decoder` (MESHSTITCH_OTLP_DECODER).

- `compiled` (the default): app/ingest/_otlp_wire.c through app/ingest/otlp_wire.py. When the
  extension is not importable (a failed or skipped build, a wheel for another Python) startup
  fails with `DecoderUnavailable`: a production image never runs the slow path unnoticed.
- `python`: the reference decoder (app/ingest/otlp_decode.py), by explicit choice, e.g. to rule
  the compiled one out while debugging.
- `auto`: compiled when importable, else python with a WARNING at startup.

Either way `/readyz` (part `otlp_decoder`), `meshstitch settings` and bench/ingest.py name the
decoder that runs. OTLP/JSON always goes through app/ingest/otlp_json.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from app.ingest.otlp_decode import DecodeResult, decode_protobuf

log = logging.getLogger(__name__)

DecoderSetting = Literal["auto", "compiled", "python"]


class Decode(Protocol):
    def __call__(
        self, body: bytes, max_attributes: int, now_ns: int | None = None
    ) -> DecodeResult: ...


@dataclass(frozen=True, slots=True)
class ProtobufDecoder:
    name: Literal["compiled", "python"]
    decode: Decode


class DecoderUnavailable(RuntimeError):
    """`otlp_decoder=compiled` and the extension cannot be imported."""


PYTHON = ProtobufDecoder("python", decode_protobuf)


def load_compiled() -> ProtobufDecoder:
    """The compiled decoder; ImportError names why it is missing."""
    from app.ingest.otlp_wire import decode_protobuf_compiled

    return ProtobufDecoder("compiled", decode_protobuf_compiled)


def select_protobuf_decoder(setting: DecoderSetting) -> ProtobufDecoder:
    if setting == "python":
        return PYTHON
    try:
        return load_compiled()
    except ImportError as exc:
        if setting == "compiled":
            raise DecoderUnavailable(
                f"MESHSTITCH_OTLP_DECODER=compiled but the compiled decoder is missing ({exc}); "
                "reinstall with a C compiler and the Python headers (`make install`), or set "
                "MESHSTITCH_OTLP_DECODER=python (or auto) to run the reference decoder"
            ) from exc
        log.warning("compiled OTLP decoder unavailable (%s): running the python decoder", exc)
        return PYTHON


def describe_protobuf_decoder(setting: DecoderSetting) -> str:
    """The decoder `setting` selects, for `meshstitch settings`; never raises."""
    try:
        return select_protobuf_decoder(setting).name
    except DecoderUnavailable as exc:
        return f"none: {exc}"
