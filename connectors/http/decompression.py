"""Undoing Content-Encoding (gzip, deflate, br) a bounded piece at a time.

A few kilobytes of gzip can expand to gigabytes, so a decoder never returns more than the
caller asks for: the client asks for one byte more than the room left under
``FetchSettings.max_body_bytes`` and stops the moment it gets it. Input not yet expanded
stays inside the decoder until the caller asks again.

This module must never read from the network or hold a whole expanded body.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli

ACCEPT_ENCODING = "gzip, deflate, br"


class DecompressionError(Exception):
    """The body is not valid for its declared Content-Encoding."""


class ContentDecoder(Protocol):
    def decompress(self, data: bytes, limit: int) -> bytes:
        """At most ``limit`` (>= 1) bytes of output; the rest waits for the next call."""

    @property
    def pending(self) -> bool:
        """Whether output is waiting that a call with no new input would return."""


class IdentityDecoder:
    def decompress(self, data: bytes, limit: int) -> bytes:
        # Uncompressed chunks are no bigger than the read size, so there is nothing to hold back.
        return data

    @property
    def pending(self) -> bool:
        return False


class ZlibDecoder:
    """gzip (possibly multi-member) and deflate, with or without the zlib wrapper."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._decompressor: zlib._Decompress | None = None
        self._tail = b""

    def decompress(self, data: bytes, limit: int) -> bytes:
        data = self._tail + data
        self._tail = b""
        if not data:
            return b""
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(self._wbits(data))
        try:
            output = self._decompressor.decompress(data, limit)
        except zlib.error as error:
            raise DecompressionError(f"the body is not valid {self._coding} ({error})") from error
        self._tail = self._decompressor.unconsumed_tail
        if self._decompressor.eof and self._decompressor.unused_data.strip(b"\x00"):
            # Concatenated gzip members form one body (RFC 1952); start the next member.
            self._tail = self._decompressor.unused_data + self._tail
            self._decompressor = None
        return output

    @property
    def pending(self) -> bool:
        return bool(self._tail)

    def _wbits(self, head: bytes) -> int:
        if self._coding != "deflate":
            return zlib.MAX_WBITS | 32  # gzip or zlib header, detected
        # "deflate" is meant to be zlib-wrapped (RFC 9110), but many servers send raw deflate.
        wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


class BrotliDecoder:
    """br, whose output buffer grows in blocks of about 32 KiB: a piece may pass ``limit`` by one block."""

    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()
        self._held = b""
        self._full = False

    def decompress(self, data: bytes, limit: int) -> bytes:
        # Brotli takes no new input until it has handed out what it already expanded.
        if not self._decompressor.can_accept_more_data():
            self._held += data
            data = b""
        elif self._held:
            data, self._held = self._held + data, b""
        try:
            output = bytes(self._decompressor.process(data, output_buffer_limit=limit))
        except brotli.error as error:
            raise DecompressionError(f"the body is not valid br ({error})") from error
        # A full buffer may leave output inside even once all input is taken in, and
        # can_accept_more_data() does not say so: ask again until a piece comes back short.
        self._full = len(output) >= limit and not self._decompressor.is_finished()
        return output

    @property
    def pending(self) -> bool:
        return self._full or bool(self._held) or not self._decompressor.can_accept_more_data()


class _ChainDecoder:
    """Several codings applied in turn (``Content-Encoding: gzip, br`` is undone br first)."""

    def __init__(self, decoders: list[ContentDecoder]) -> None:
        self._decoders = decoders

    def decompress(self, data: bytes, limit: int) -> bytes:
        for decoder in self._decoders[:-1]:
            # Inner stages are bounded too; their surplus waits inside them.
            data = decoder.decompress(data, limit)
        return self._decoders[-1].decompress(data, limit)

    @property
    def pending(self) -> bool:
        return any(decoder.pending for decoder in self._decoders)


def decoder_for(content_encoding: str | None) -> ContentDecoder:
    """The decoder for a Content-Encoding header; raises ``DecompressionError`` if unsupported."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    decoders: list[ContentDecoder] = []
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip", "deflate"):
            decoders.append(ZlibDecoder(coding))
        elif coding == "br":
            decoders.append(BrotliDecoder())
        else:
            raise DecompressionError(f"Content-Encoding {coding!r} is not supported (we asked for {ACCEPT_ENCODING})")
    if not decoders:
        return IdentityDecoder()
    return decoders[0] if len(decoders) == 1 else _ChainDecoder(decoders)
