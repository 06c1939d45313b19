"""Turning a fetched body into text, and naming the encoding and the evidence it came from.

Servers and pages misdeclare their charset often (a windows-1252 page under a UTF-8 header,
a UTF-8 page under a latin-1 one), so evidence is weighed in order: a byte-order mark, or
the NUL pattern of a BOM-less UTF-16/32 document's first characters (XML 1.0 Appendix F); the
HTTP header; the page's own ``<meta charset>`` or XML declaration; then statistical
detection when those fail to decode. One rule bends that order: bytes that pass a strict
UTF-8 decode and are not plain ASCII are UTF-8 whatever is declared, because legacy-encoded
text almost never forms valid multi-byte UTF-8 by chance, while a single-byte declaration
"decodes" any bytes at all.

It is the one place bytes become text: HTTP bodies, pages, feed documents and JSON Feeds
all decode here, so every reader weighs the same evidence the same way.

This module must never raise on bad input: undecodable bytes become replacement characters.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

_DECLARATION_WINDOW = 4096
_DETECTION_WINDOW = 1 << 20
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Browsers read these declarations as windows-1252 (the WHATWG encoding rule), and so do we.
# Which of the first four bytes are NUL, for an ASCII character ("<") first -> encoding.
_NUL_PATTERNS = {
    (False, True, True, True): "utf-32-le",
    (True, True, True, False): "utf-32-be",
    (False, True, False, True): "utf-16-le",
    (True, False, True, False): "utf-16-be",
}
_READ_AS_CP1252 = {"latin-1", "iso8859-1", "ascii", "cp1252"}
_TEXTUAL_APPLICATION_TYPES = {
    "application/xml",
    "application/xhtml+xml",
    "application/json",
    "application/javascript",
    "application/x-javascript",
}


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str
    # bom, pattern (NULs of BOM-less UTF-16/32), header, meta, utf-8, detected or fallback
    source: str


def wide_unicode(body: bytes) -> str | None:
    """UTF-16 or UTF-32 (with its byte order) if ``body`` is in one, from its BOM or else
    from the NUL bytes around its first characters; ``None`` for ASCII-compatible bodies."""
    for bom, encoding in _BOMS[1:]:
        if body.startswith(bom):
            return encoding
    head = body[:4]
    if len(head) < 4:
        return None
    return _NUL_PATTERNS.get((head[0] == 0, head[1] == 0, head[2] == 0, head[3] == 0))


def parse_content_type(header: str | None) -> tuple[str | None, str | None]:
    """The media type (lower case) and the charset parameter of a Content-Type header."""
    if not header:
        return None, None
    media_type, *parameters = header.split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower() or None, charset


def is_textual(media_type: str | None) -> bool:
    """Whether a body of this media type is decoded to text (an unknown type is)."""
    if media_type is None:
        return True
    return (
        media_type.startswith("text/")
        or media_type in _TEXTUAL_APPLICATION_TYPES
        or media_type.endswith(("+xml", "+json"))
    )


def decode_text(body: bytes, charset_header: str | None) -> DecodedText:
    """``body`` as text, given the charset the HTTP header declared (if any)."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return DecodedText(body[len(bom) :].decode(encoding, errors="replace"), encoding, "bom")
    # Before any declaration: NUL bytes are valid UTF-8, so a UTF-16 body would "decode" as it.
    wide = wide_unicode(body)
    if wide is not None:
        return DecodedText(body.decode(wide, errors="replace"), wide, "pattern")
    as_utf8 = _strict(body, "utf-8")
    multibyte_utf8 = as_utf8 is not None and not body.isascii()
    head = body[:_DECLARATION_WINDOW]
    for declared, source in ((charset_header, "header"), (_declared_in_page(head), "meta")):
        codec = _codec(declared, head)
        if codec is None:
            continue
        if codec == "utf-8" or multibyte_utf8:
            if as_utf8 is not None:
                return DecodedText(as_utf8, "utf-8", source if codec == "utf-8" else "utf-8")
            continue
        text = _strict(body, codec)
        if text is not None:
            return DecodedText(text, codec, source)
    if as_utf8 is not None:
        return DecodedText(as_utf8, "utf-8", "utf-8")
    detected = _detected_encoding(body[:_DETECTION_WINDOW])
    if detected is not None:
        text = _strict(body, detected)
        if text is not None:
            return DecodedText(text, codecs.lookup(detected).name, "detected")
    return DecodedText(body.decode("cp1252", errors="replace"), "cp1252", "fallback")


def _detected_encoding(sample: bytes) -> str | None:
    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    # Short Western text reads equally well as windows-1250 or 1257, and the detector often
    # picks those; a tie goes to windows-1252, by far the most common legacy encoding on the web.
    if "cp1252" in best.could_be_from_charset or any(
        match.encoding == "cp1252" and match.chaos <= best.chaos and match.coherence >= best.coherence
        for match in matches
    ):
        return "cp1252"
    return str(best.encoding)


def _declared_in_page(head: bytes) -> str | None:
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii", errors="ignore") if match else None


def _codec(declared: str | None, head: bytes) -> str | None:
    if not declared:
        return None
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        return None
    if name in _READ_AS_CP1252:
        return "cp1252"
    # A UTF-16/32 declaration on a body with no NUL bytes is wrong (an ASCII-compatible page
    # copied its template's declaration); decoding it so would turn the page into noise.
    if name.startswith(("utf-16", "utf-32")) and b"\x00" not in head:
        return None
    return name


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
