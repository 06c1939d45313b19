"""Content-Encoding decoders hand out bounded pieces, so a bomb never expands past the cap."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from connectors.http.decompression import DecompressionError, decoder_for

PAGE = b"<p>" + b"Nachrichten aus aller Welt. " * 2000 + b"</p>"


def _deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _expand(coding: str, body: bytes, limit: int, piece: int = 4096) -> tuple[bytes, int]:
    """All the output, fed ``piece`` bytes at a time; and the largest single output seen."""
    decoder = decoder_for(coding)
    out: list[bytes] = []
    largest = 0
    for start in range(0, len(body), piece):
        data = body[start : start + piece]
        while True:
            expanded = decoder.decompress(data, limit)
            data = b""
            largest = max(largest, len(expanded))
            out.append(expanded)
            if not decoder.pending:
                break
    return b"".join(out), largest


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(PAGE)),
        ("x-gzip", gzip.compress(PAGE)),
        ("gzip", gzip.compress(PAGE[:1000]) + gzip.compress(PAGE[1000:])),
        ("deflate", zlib.compress(PAGE)),
        ("deflate", _deflate_raw(PAGE)),
        ("br", brotli.compress(PAGE)),
        ("gzip, br", brotli.compress(gzip.compress(PAGE))),
        ("identity", PAGE),
        (None, PAGE),
    ],
    ids=[
        "gzip",
        "x-gzip",
        "gzip-multi-member",
        "deflate-zlib",
        "deflate-raw",
        "br",
        "gzip-then-br",
        "identity",
        "none",
    ],
)
def test_every_coding_round_trips_in_small_pieces(coding: str | None, body: bytes) -> None:
    expanded, largest = _expand(coding or "", body, limit=1000)
    assert expanded == PAGE
    if coding not in ("identity", None):
        # Brotli's output buffer grows by blocks of about 32 KiB; zlib's honours the limit exactly.
        assert largest <= 1000 + (33 << 10), "a decoder handed out far more than it was asked for"


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_bomb_is_handed_out_no_faster_than_asked(coding: str) -> None:
    zeros = bytes(64 << 20)
    body = gzip.compress(zeros, compresslevel=9) if coding == "gzip" else brotli.compress(zeros, quality=1)
    decoder = decoder_for(coding)
    first = decoder.decompress(body, 65536)
    assert len(first) <= 65536 + (33 << 10) and decoder.pending


def test_corrupt_bodies_and_unknown_codings_raise_a_named_error() -> None:
    with pytest.raises(DecompressionError, match="not valid gzip"):
        decoder_for("gzip").decompress(b"definitely not gzip", 100)
    with pytest.raises(DecompressionError, match="'zstd' is not supported"):
        decoder_for("zstd")
