from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from app.ingest.decompress import BadEncoding, TooLarge, UnsupportedEncoding, decompress

PAYLOAD = b"waypoint span " * 1000


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("", PAYLOAD),
        ("identity", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("GZIP ", gzip.compress(PAYLOAD)),
        ("x-gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),
        ("deflate", raw_deflate(PAYLOAD)),
    ],
)
def test_supported_encodings(encoding: str, body: bytes) -> None:
    assert decompress(body, encoding, len(PAYLOAD)) == PAYLOAD


def test_concatenated_gzip_members_are_all_read() -> None:
    assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"


@pytest.mark.parametrize(
    ("encoding", "body", "error"),
    [
        ("", PAYLOAD, TooLarge),
        ("gzip", gzip.compress(PAYLOAD), TooLarge),
        ("deflate", zlib.compress(PAYLOAD), TooLarge),
        ("gzip", gzip.compress(PAYLOAD)[:-10], BadEncoding),
        ("gzip", b"", BadEncoding),
        ("gzip", b"not gzip at all", BadEncoding),
        ("deflate", b"\xff\xff\xff", BadEncoding),
        ("br", b"", UnsupportedEncoding),
        ("gzip, br", b"", UnsupportedEncoding),
    ],
)
def test_refusals(encoding: str, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decompress(body, encoding, len(PAYLOAD) - 1)


def test_gzip_bomb_never_holds_more_than_the_cap() -> None:
    packer = zlib.compressobj(wbits=31)
    bomb = b"".join(packer.compress(bytes(1 << 20)) for _ in range(256)) + packer.flush()  # 256 MiB
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            decompress(bomb, "gzip", 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
