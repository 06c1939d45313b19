"""Decoding bodies whose charset is missing, wrong or contradictory."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.http.charsets import decode_text, is_textual, parse_content_type

WESTERN = "Der Bürgermeister sagte, dass die Straße gesperrt wird \u2013 «bis Montag»."


@pytest.mark.parametrize(
    ("body", "header", "encoding", "source"),
    [
        (WESTERN.encode("utf-8"), "utf-8", "utf-8", "header"),
        (WESTERN.encode("cp1252"), "utf-8", "cp1252", "detected"),
        (WESTERN.encode("utf-8"), "iso-8859-1", "utf-8", "utf-8"),
        (WESTERN.encode("cp1252"), "iso-8859-1", "cp1252", "header"),
        (WESTERN.encode("cp1252"), None, "cp1252", "detected"),
        (codecs.BOM_UTF8 + WESTERN.encode("utf-8"), "cp1251", "utf-8", "bom"),
        ('<meta charset="iso-8859-15"><p>Straße kostet 5 €</p>'.encode("iso-8859-15"), None, "iso8859-15", "meta"),
        (
            f'<?xml version="1.0" encoding="windows-1251"?><rss>{"Новости дня"}</rss>'.encode("cp1251"),
            None,
            "cp1251",
            "meta",
        ),
        ("<p>Новости дня, главные события</p>".encode("cp1251"), None, "cp1251", "detected"),
        (b"<p>plain</p>", "no-such-charset", "utf-8", "utf-8"),
        (b"<p>plain</p>", "utf-16", "utf-8", "utf-8"),
    ],
    ids=[
        "utf8-as-declared",
        "cp1252-declared-utf8",
        "utf8-declared-latin1",
        "cp1252-declared-latin1",
        "cp1252-undeclared",
        "bom-beats-header",
        "meta-charset",
        "xml-declaration",
        "cyrillic-undeclared",
        "unknown-declaration",
        "utf16-declared-ascii-body",
    ],
)
def test_the_right_encoding_wins(body: bytes, header: str | None, encoding: str, source: str) -> None:
    decoded = decode_text(body, header)
    assert (decoded.encoding, decoded.source) == (encoding, source)
    assert "\ufffd" not in decoded.text


def test_the_header_charset_beats_the_meta_charset() -> None:
    body = f'<meta charset="iso-8859-5"><p>{WESTERN}</p>'.encode("cp1252")
    assert decode_text(body, "windows-1252").encoding == "cp1252"


@given(st.binary(max_size=2048), st.sampled_from([None, "utf-8", "latin-1", "shift_jis", "utf-16", "bogus"]))
def test_decoding_never_raises(body: bytes, header: str | None) -> None:
    assert isinstance(decode_text(body, header).text, str)


@pytest.mark.parametrize(
    ("header", "media_type", "charset"),
    [
        ("text/html; charset=UTF-8", "text/html", "UTF-8"),
        ('Text/HTML;Charset="iso-8859-1"', "text/html", "iso-8859-1"),
        ("application/rss+xml", "application/rss+xml", None),
        (None, None, None),
    ],
)
def test_content_types_are_parsed(header: str | None, media_type: str | None, charset: str | None) -> None:
    assert parse_content_type(header) == (media_type, charset)


@pytest.mark.parametrize(
    ("media_type", "textual"),
    [
        ("text/html", True),
        ("application/atom+xml", True),
        ("application/feed+json", True),
        ("application/json", True),
        (None, True),
        ("image/jpeg", False),
        ("application/pdf", False),
    ],
)
def test_only_textual_types_are_decoded(media_type: str | None, textual: bool) -> None:
    assert is_textual(media_type) is textual


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_unicode_without_a_bom_is_recognised_before_any_declaration(encoding: str) -> None:
    # NUL bytes are valid UTF-8: without this step a UTF-16 page "decodes" as UTF-8 noise.
    body = '<html><meta charset="utf-8"><p>Caf\u00e9 \u2014 na\u00efve</p></html>'.encode(encoding)
    decoded = decode_text(body, "utf-8")
    assert (decoded.text, decoded.encoding, decoded.source) == (body.decode(encoding), encoding, "pattern")


def test_feed_documents_and_json_feeds_decode_through_the_one_decoder() -> None:
    from connectors.jsonfeed import parse_json_feed

    feed = '{"version": "https://jsonfeed.org/version/1.1", "title": "Caf\u00e9", "items": [{"id": "1", '
    feed += '"url": "https://example.test/a", "title": "Na\u00efve \u2014 yes"}]}'
    for body, content_type, warned in (
        (feed.encode("utf-16-le"), None, "decoded as utf-16-le"),  # no BOM: found by its NULs
        (feed.encode("cp1252"), "application/feed+json; charset=windows-1252", "decoded as cp1252"),
    ):
        parsed = parse_json_feed(body, url="https://example.test/feed.json", content_type=content_type, source_name="t")
        assert parsed.title == "Caf\u00e9" and parsed.entries[0].title == "Na\u00efve \u2014 yes"
        assert any(warned in warning for warning in parsed.warnings), parsed.warnings
