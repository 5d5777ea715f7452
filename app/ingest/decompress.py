"""Bounded gzip/deflate: a 16 MiB gzip bomb must cost at most `max_bytes` of memory, not 16 GiB."""

from __future__ import annotations

import zlib

GZIP_WBITS = 16 + zlib.MAX_WBITS
ZLIB_WBITS = zlib.MAX_WBITS
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS


class TooLarge(Exception):
    """The payload inflates past the limit (→ 413)."""


class BadEncoding(Exception):
    """Corrupt or truncated compressed data (→ 400)."""


class UnsupportedEncoding(Exception):
    """A Content-Encoding other than gzip, deflate or identity (→ 415)."""


def decompress(body: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Undo `content_encoding` ("", "identity", "gzip", "x-gzip", "deflate"), never past max_bytes."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > max_bytes:
            raise TooLarge(f"payload over {max_bytes} bytes")
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, GZIP_WBITS, max_bytes)
    if encoding == "deflate":
        # RFC 9110 "deflate" is the zlib format, but some clients send raw deflate: accept both.
        try:
            return _inflate(body, ZLIB_WBITS, max_bytes)
        except BadEncoding:
            return _inflate(body, RAW_DEFLATE_WBITS, max_bytes)
    raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding[:40]!r}")


def _inflate(data: bytes, wbits: int, max_bytes: int) -> bytes:
    out = bytearray()
    # A gzip body may hold several members back to back (RFC 1952 §2.2): inflate them all.
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = data
        try:
            while pending and not inflater.eof:
                # max_length bounds each step's output, so memory never exceeds the cap.
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise TooLarge(f"payload inflates past {max_bytes} bytes")
                pending = inflater.unconsumed_tail
        except zlib.error as exc:
            raise BadEncoding(f"corrupt compressed body: {exc}") from exc
        if not inflater.eof:
            raise BadEncoding("truncated compressed body")
        data = inflater.unused_data
        if wbits != GZIP_WBITS or not data.strip(b"\x00"):
            return bytes(out)
