"""Turning fetched bytes into HTML text, whatever the page claims about its encoding.

Pages lie about their charset often enough (a UTF-8 body under a latin-1 header, or no
declaration at all) that the order of evidence matters: a byte-order mark, then a strict
UTF-8 decode (which random non-UTF-8 bytes almost never pass), then the page's own
declaration, then statistical detection. This module must never raise: undecodable input
becomes text with replacement characters.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# Only the head of the page is searched: a declaration further down is not one the
# browser would honour either.
_DECLARATION_WINDOW = 4096
_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_html(raw: str | bytes) -> str:
    """The page as text; ``str`` input is returned as is."""
    if isinstance(raw, str):
        return raw
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :].decode(encoding, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _declared_encoding(raw)
    if declared is not None:
        return raw.decode(declared, errors="replace")
    return _detected(raw)


def _declared_encoding(raw: bytes) -> str | None:
    match = _DECLARED_CHARSET.search(raw[:_DECLARATION_WINDOW])
    if match is None:
        return None
    name = match.group(1).decode("ascii", errors="ignore").lower()
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # A page declaring UTF-8 that failed the strict decode above is really in some legacy
    # encoding; and browsers read latin-1 declarations as windows-1252 (the WHATWG rule).
    if codec == "utf-8":
        return None
    return "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec


def _detected(raw: bytes) -> str:
    best = from_bytes(raw[: 1 << 20]).best()
    encoding = best.encoding if best is not None else "cp1252"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("cp1252", errors="replace")
