"""parse_feed_document against hostile and arbitrary bytes: bounded time and memory, no exception.

The hostile documents are generated here, so they stay a few kilobytes on disk.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.feed_document import DEFAULT_MAX_DOCUMENT_BYTES, FeedOutcome, parse_feed_document
from connectors.feeds import parse_rss_atom
from connectors.sitemaps import parse_sitemap

URL = "https://hostile.example/feed.xml"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def parse(body: bytes, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> tuple[FeedOutcome, str, int]:
    result = parse_feed_document(body, url=URL, content_type=None, source_name="hostile", max_bytes=max_bytes)
    return result.outcome, result.detail, len(result.entries)


def billion_laughs(root: str = "rss", levels: int = 10) -> bytes:
    declarations = ['<!ENTITY lol0 "lol">']
    declarations += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    laughs = f"&lol{levels - 1};"
    if root == "urlset":
        body = f'<urlset xmlns="{SITEMAP_NS}"><url><loc>http://a.example/{laughs}</loc></url></urlset>'
    else:
        body = (
            f'<rss version="2.0"><channel><title>{laughs}</title>'
            f"<item><title>{laughs}</title><link>http://a.example/</link></item></channel></rss>"
        )
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [\n' + "\n".join(declarations) + "\n]>\n" + body).encode()


def gzip_bomb(member_bytes: int = 8 * 1024 * 1024, members: int = 128) -> bytes:
    """About 1 GiB of zeros once decompressed, about a megabyte compressed.

    Concatenated gzip members are one valid gzip stream, so one small member is built
    and repeated instead of compressing a gigabyte.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    member = compressor.compress(b"\0" * member_bytes) + compressor.flush()
    return member * members


def test_billion_laughs_is_refused_before_parsing() -> None:
    started = time.monotonic()
    outcome, detail, entries = parse(billion_laughs())
    assert outcome is FeedOutcome.REFUSED
    assert "<!ENTITY>" in detail and entries == 0
    assert time.monotonic() - started < 1


def test_billion_laughs_is_refused_in_every_disguise() -> None:
    document = billion_laughs()
    disguises = {
        "gzip": gzip.compress(document),
        "utf-16 with BOM": document.decode().encode("utf-16"),
        "utf-16-le without BOM": document.decode().encode("utf-16-le"),
        "leading whitespace": b"\n\n  " + document,
        "junk before the prolog": b"garbage " + document,
        "sitemap": billion_laughs("urlset"),
        "lower-case declaration": document.replace(b"<!ENTITY", b"<!entity"),
    }
    for name, body in disguises.items():
        outcome, _, entries = parse(body)
        assert outcome is FeedOutcome.REFUSED, name
        assert entries == 0, name


def test_readers_do_not_expand_entities_even_when_called_directly() -> None:
    # Defence in depth: the readers behind the prolog check are safe on their own too.
    started = time.monotonic()
    tracemalloc.start()
    try:
        feed = parse_rss_atom(billion_laughs(), url=URL, content_type=None, source_name="hostile")
        sitemap = parse_sitemap(billion_laughs("urlset"), url=URL, source_name="hostile")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 20 * 1024 * 1024
    assert all(len(entry.title or "") < 1000 for entry in feed.entries)
    assert all(len(entry.canonical_url) < 1000 for entry in sitemap.entries)


def test_external_entities_are_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>&xxe;</title><item><title>&xxe;</title>'
        "<link>http://a.example/</link></item></channel></rss>"
    ).encode()
    assert parse(body)[0] is FeedOutcome.REFUSED
    sitemap = parse_sitemap(
        body.replace(b"DOCTYPE rss", b"DOCTYPE urlset").split(b"<rss")[0]
        + b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://a.example/&xxe;</loc></url></urlset>',
        url=URL,
        source_name="hostile",
    )
    assert all("TOP-SECRET" not in entry.canonical_url for entry in sitemap.entries)
    feed = parse_rss_atom(body, url=URL, content_type=None, source_name="hostile")
    assert all("TOP-SECRET" not in (entry.title or "") for entry in feed.entries)


def test_a_body_that_is_a_file_path_is_not_opened(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open a file of that name; the reader must not let it.
    feed = tmp_path / "feed.xml"
    feed.write_text('<rss version="2.0"><channel><item><link>http://a.example/x</link></item></channel></rss>')
    path = str(feed).encode()
    assert parse(path)[0] is FeedOutcome.NOT_A_FEED
    assert parse_rss_atom(path, url=URL, content_type=None, source_name="hostile").entries == ()


def test_gzip_bomb_is_refused_with_bounded_memory() -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    started = time.monotonic()
    tracemalloc.start()
    try:
        outcome, detail, _ = parse(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome is FeedOutcome.REFUSED
    assert f"{DEFAULT_MAX_DOCUMENT_BYTES:,}-byte document limit" in detail
    assert peak < DEFAULT_MAX_DOCUMENT_BYTES + 8 * 1024 * 1024
    assert time.monotonic() - started < 10


def test_document_limit_is_a_parameter() -> None:
    outcome, detail, _ = parse(gzip_bomb(members=1), max_bytes=1024 * 1024)
    assert outcome is FeedOutcome.REFUSED and "1,048,576-byte" in detail
    assert parse(b"<rss>" + b" " * 2000 + b"</rss>", max_bytes=1000)[0] is FeedOutcome.REFUSED


def test_truncated_and_corrupt_gzip_are_malformed() -> None:
    document = gzip.compress(b'<rss version="2.0"><channel><item><link>http://a.example/</link></item></channel></rss>')
    assert parse(document[:20])[0] is FeedOutcome.MALFORMED
    assert parse(document[:10] + b"\xff" * 30)[0] is FeedOutcome.MALFORMED


def test_empty_and_whitespace_bodies_are_explicit() -> None:
    assert parse(b"")[0] is FeedOutcome.MALFORMED
    assert parse(b"   \n")[0] is FeedOutcome.NOT_A_FEED


def test_a_well_formed_feed_without_items_is_empty_not_ok() -> None:
    outcome, detail, entries = parse(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    assert outcome is FeedOutcome.EMPTY and entries == 0
    assert "no entries" in detail
    assert parse(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"></urlset>')[0] is FeedOutcome.EMPTY
    assert parse(b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": []}')[0] is FeedOutcome.EMPTY


def test_other_xml_is_not_a_feed() -> None:
    outcome, detail, _ = parse(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert outcome is FeedOutcome.NOT_A_FEED and "<svg>" in detail


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    assert parse(b"[" * 100_000 + b"]" * 100_000)[0] in (FeedOutcome.MALFORMED, FeedOutcome.NOT_A_FEED)


# Fragments that steer random bytes into each reader's code path.
PREFIXES = st.sampled_from(
    [
        b"",
        b"\x1f\x8b",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b'<?xml version="1.0"?>',
        b'<rss version="2.0"><channel><item><link>',
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title type="html">',
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>',
        b"<sitemapindex><sitemap><loc>",
        b'{"version": "https://jsonfeed.org/version/1", "items": [{"url": ',
        b"<!DOCTYPE html><html><title>",
        b"<!DOCTYPE x [",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=PREFIXES, rest=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(prefix: bytes, rest: bytes) -> None:
    result = parse_feed_document(prefix + rest, url=URL, content_type=None, source_name="fuzz")
    assert isinstance(result.outcome, FeedOutcome)
    assert result.detail
    assert "internal parser error" not in result.detail


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(max_size=80),
    link=st.text(max_size=80),
    date=st.text(max_size=40),
    content_type=st.one_of(
        st.none(), st.sampled_from(["text/xml", "application/json; charset=utf-16", "x; charset=nope"])
    ),
)
def test_arbitrary_field_values_never_raise(title: str, link: str, date: str, content_type: str | None) -> None:
    def escaped(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;")

    documents = [
        f'<rss version="2.0"><channel><item><title>{escaped(title)}</title><link>{escaped(link)}</link>'
        f"<pubDate>{escaped(date)}</pubDate></item></channel></rss>",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{escaped(link)}</loc>'
        f"<lastmod>{escaped(date)}</lastmod></url></urlset>",
    ]
    for document in documents:
        result = parse_feed_document(
            document.encode("utf-8", "surrogatepass"), url=URL, content_type=content_type, source_name="fuzz"
        )
        assert "internal parser error" not in result.detail
