"""parse_feed_document over the real feed corpus in tests/data/feeds (see its README).

The ten EXPECTED.json files are checked against their hand-read facts; every other quirk
class of the corpus has at least one test naming the file that shows it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from connectors.feed_document import FeedOutcome, ParsedFeed, parse_feed_document
from schemas.feed_entry import FeedEntry, FeedKind

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
EXPECTED: list[dict[str, Any]] = json.loads((FEEDS / "EXPECTED.json").read_text(encoding="utf-8"))["files"]
MANIFEST: list[dict[str, Any]] = json.loads((FEEDS / "manifest.json").read_text(encoding="utf-8"))


@cache
def parsed(name: str, url: str | None = None, content_type: str | None = None) -> ParsedFeed:
    return parse_feed_document(
        (FEEDS / name).read_bytes(),
        url=url or f"https://feeds.example.org/{name}",
        content_type=content_type,
        source_name="corpus",
    )


def first(name: str, url: str | None = None) -> FeedEntry:
    result = parsed(name, url)
    assert result.entries, result.detail
    return result.entries[0]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# --- EXPECTED.json -------------------------------------------------------------------


@pytest.mark.parametrize("expected", EXPECTED, ids=[e["file"] for e in EXPECTED])
def test_expected_facts(expected: dict[str, Any]) -> None:
    result = parsed(expected["file"])
    facts = expected["first_entry"]
    assert result.outcome is FeedOutcome.OK, result.detail
    assert len(result.entries) == expected["entry_count"]
    entry = result.entries[0]
    assert entry.title == facts["title"].strip()
    assert entry.url == facts["link"].strip()
    assert entry.published_at == utc(facts["published_utc"])


# --- the whole corpus ----------------------------------------------------------------


def test_every_corpus_file_gets_an_explicit_outcome() -> None:
    assert len(MANIFEST) == 74
    outcomes: dict[str, FeedOutcome] = {}
    for record in MANIFEST:
        result = parsed(record["file"])
        assert isinstance(result.outcome, FeedOutcome)
        assert result.detail, record["file"]
        assert "internal parser error" not in result.detail, (record["file"], result.detail)
        if result.outcome is FeedOutcome.OK:
            assert result.entries or result.child_sitemaps, record["file"]
        else:
            assert not result.entries, record["file"]
        outcomes[record["file"]] = result.outcome
    refused = {name: outcome for name, outcome in outcomes.items() if outcome is not FeedOutcome.OK}
    assert refused == {
        "rome/2.rss": FeedOutcome.NOT_A_FEED,
        "ranchero-rsparser/ScriptingNews.json": FeedOutcome.NOT_A_FEED,
        "ranchero-rsparser/allthis-partial.json": FeedOutcome.MALFORMED,
        "feed-rs/rss_2.0_invalid_1.xml": FeedOutcome.MALFORMED,
    }


def test_at_least_as_many_entries_as_feedparser_alone() -> None:
    for record in MANIFEST:
        result = parsed(record["file"])
        usable = len(result.entries) + len(result.skipped)
        assert usable >= record["feedparser_6_0_14"]["entries"], record["file"]


def test_every_entry_id_is_the_article_id_of_its_canonical_url() -> None:
    entry = first("rbren-rss-parser/guardian.rss")
    assert entry.article_id.startswith("url-")
    assert FeedEntry.model_validate_json(entry.model_dump_json()) == entry


# --- formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("miniflux/rdf_UTF8.xml", FeedKind.RDF),
        ("rbren-rss-parser/craigslist.rss", FeedKind.RDF),
        ("rbren-rss-parser/guardian.rss", FeedKind.RSS),
        ("rbren-rss-parser/uolNoticias.rss", FeedKind.RSS),  # <rss> without a version
        ("rbren-rss-parser/feedburner.atom", FeedKind.ATOM),
        ("rome/YouTube-MostPopular.rss", FeedKind.ATOM),  # Atom named .rss
        ("trafilatura/feed.json", FeedKind.JSON_FEED),
        ("advertools/news_sitemap.xml", FeedKind.NEWS_SITEMAP),
        ("advertools/video_sitemap.xml", FeedKind.SITEMAP),
    ],
)
def test_format_is_sniffed_from_the_bytes(name: str, kind: FeedKind) -> None:
    result = parsed(name)
    assert result.kind is kind
    assert all(entry.found_in is kind for entry in result.entries)


@pytest.mark.parametrize(
    ("name", "count", "first_title"),
    [
        ("feedjira/json_feed.json", 20, None),
        ("trafilatura/feed.json", 25, "Keller Rinaudo: How can delivery drones save lives?"),
        ("ranchero-rsparser/curt.json", 26, None),
        ("feed-rs/jsonfeed_elastic_1.1.json", 3, "InfluxDB vs. Graphite for Time Series Data & Metrics Benchmark"),
    ],
)
def test_json_feeds(name: str, count: int, first_title: str | None) -> None:
    result = parsed(name)
    assert result.outcome is FeedOutcome.OK
    assert len(result.entries) == count
    if first_title is not None:
        assert result.entries[0].title == first_title
    assert result.entries[0].published_at is not None


def test_json_feed_1_1_authors_language_and_rfc822_dates() -> None:
    result = parsed("feed-rs/jsonfeed_elastic_1.1.json")
    assert result.title == "Blog \u2013 InfluxData"  # &#8211; decoded
    entry = result.entries[0]
    assert entry.authors[0] == "Chris Churilo"
    assert entry.language == "en-us"
    assert entry.published_at == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)  # "Fri, 31 May 2019 12:17:58 -0700"
    assert result.entries[1].language == "en-au"  # the item's own language beats the feed's


def test_json_that_is_not_a_json_feed_is_not_a_feed() -> None:
    result = parsed("ranchero-rsparser/ScriptingNews.json")
    assert result.outcome is FeedOutcome.NOT_A_FEED
    assert "rss" in result.detail


def test_truncated_json_feed_is_malformed_with_position() -> None:
    result = parsed("ranchero-rsparser/allthis-partial.json")
    assert result.outcome is FeedOutcome.MALFORMED
    assert "invalid JSON" in result.detail and "line" in result.detail


def test_news_sitemap_fields() -> None:
    entry = first("advertools/news_sitemap.xml")
    assert entry.language == "en-us"
    assert entry.tags == ["Coronavirus (2019-nCoV)", "Quarantines", "Writing and Writers"]
    assert entry.updated_at == datetime(2020, 5, 19, 21, 57, 45, tzinfo=UTC)  # lastmod
    assert entry.provenance["title"] == "news:title"


def test_video_sitemap_uses_video_title_and_date() -> None:
    result = parsed("advertools/video_sitemap.xml")
    assert len(result.entries) == 6
    entry = result.entries[0]
    assert entry.title == "Trump Indonesia trees"
    assert entry.published_at == datetime(2020, 5, 5, 16, 3, 31, tzinfo=UTC)


def test_plain_sitemap_lastmod_is_an_update_not_a_publication() -> None:
    result = parsed("advertools/regular_sitemap.xml.gz")
    assert [entry.url for entry in result.entries][:2] == [
        "http://www.example.com/",
        "http://www.example.com/catalog?item=12&desc=vacation_hawaii",
    ]
    assert result.entries[0].updated_at == datetime(2005, 1, 1, tzinfo=UTC)
    assert all(entry.published_at is None for entry in result.entries)


def test_sitemap_index_lists_children_with_lastmod() -> None:
    result = parsed("trafilatura/sitemap2.xml")
    assert result.outcome is FeedOutcome.OK
    assert result.entries == ()
    assert [(child.url, child.lastmod) for child in result.child_sitemaps] == [
        ("http://www.example.com/sitemap1.xml.gz", datetime(2004, 10, 1, 18, 23, 17, tzinfo=UTC)),
        ("http://www.example.com/sitemap2.xml.gz", datetime(2005, 1, 1, tzinfo=UTC)),  # CDATA <loc>
    ]


@pytest.mark.parametrize(
    ("name", "count", "gzipped"),
    [
        ("advertools/zipped_sitemap.xml.gz", 5, True),
        ("trafilatura/sitemap.xml.gz", 84, True),
        ("advertools/regular_sitemap.xml.gz", 5, False),  # .gz name, plain XML inside
        ("node-feedparser/invalid-characters-gzipped.xml", 25, True),  # gzip under a .xml name
    ],
)
def test_gzip_is_recognised_by_its_bytes_not_its_name(name: str, count: int, gzipped: bool) -> None:
    result = parsed(name)
    assert result.outcome is FeedOutcome.OK
    assert len(result.entries) == count
    assert any("gzip" in warning for warning in result.warnings) is gzipped


def test_emoji_outside_the_bmp_survive_gzip_and_parsing() -> None:
    entries = parsed("node-feedparser/invalid-characters-gzipped.xml").entries
    summaries = " ".join(entry.summary or "" for entry in entries)
    assert any(ord(character) > 0xFFFF for character in summaries)


# --- broken, wrapped and not-a-feed documents ------------------------------------------


def test_html_error_page_is_not_a_feed() -> None:
    result = parsed("rome/2.rss")
    assert result.outcome is FeedOutcome.NOT_A_FEED
    assert "HTML page" in result.detail and "We're Sorry" in result.detail


def test_reuters_feed_that_crashed_mid_document_is_malformed() -> None:
    result = parsed("feed-rs/rss_2.0_invalid_1.xml")
    assert result.outcome is FeedOutcome.MALFORMED
    assert "no entries" in result.detail and "XML error" in result.detail


def test_atom_inside_an_xhtml_page_is_read_with_a_warning() -> None:
    result = parsed("feedjira/DuplicateContentAtomFeed.xml")
    assert result.outcome is FeedOutcome.OK and len(result.entries) == 10
    assert "feed found inside an HTML page" in result.warnings


def test_missing_closing_tag_is_recovered_and_said() -> None:
    result = parsed("feedjira/InvalidDateFormat.xml")
    assert result.outcome is FeedOutcome.OK and len(result.entries) == 2
    assert any(warning.startswith("recovered from") for warning in result.warnings)


def test_entry_without_link_is_skipped_with_a_reason() -> None:
    result = parsed("miniflux/no_encoding_ISO-8859-1.xml")
    assert len(result.entries) == 9
    assert len(result.skipped) == 1 and "no usable http(s) link" in result.skipped[0]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("feedjira/TechCrunch.xml", 20),
        ("feedjira/youtube_atom.xml", 15),
        ("rbren-rss-parser/itunes-keywords-astext.rss", 32),
        ("ranchero-rsparser/phpxml.rss", 20),
        ("ranchero-rsparser/macworld.rss", 30),
        ("feed-rs/rss_2.0_ilmessaggero.xml", 1),
        ("prof18-rss-parser/feed-test-hindi-channel-image.xml", 1),
    ],
)
def test_junk_or_whitespace_before_the_declaration(name: str, count: int) -> None:
    result = parsed(name)
    assert result.outcome is FeedOutcome.OK
    assert len(result.entries) == count
    # Leading whitespace is dropped before parsing, so these no longer need the loose parser.
    if name in ("feedjira/TechCrunch.xml", "feedjira/youtube_atom.xml", "rbren-rss-parser/itunes-keywords-astext.rss"):
        assert result.warnings == ()


# --- encodings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("miniflux/encoding_ISO-8859-1.xml", "ü"),
        ("miniflux/encoding_WINDOWS-1251.xml", "ж"),
        ("rbren-rss-parser/encoding.rss", "ç"),
        ("node-feedparser/iconv.xml", "Оренбург"),
        ("prof18-rss-parser/feed-test-greek.xml", "Πορτραίτα"),
        ("ranchero-rsparser/kc0011.rss", "币"),
        ("feed-rs/rss_1.0_iso8859.xml", "ü"),
        ("miniflux/no_encoding_ISO-8859-1.xml", "é"),
        ("rbren-rss-parser/uolNoticias.rss", "ã"),
        ("feedjira/a10.xml", "Some Title"),
        ("ranchero-rsparser/donthitsave.xml", "Don"),
    ],
)
def test_encodings_are_decoded(name: str, text: str) -> None:
    result = parsed(name)
    found = " ".join(f"{entry.title} {entry.summary}" for entry in result.entries) + f" {result.title}"
    assert text in found
    assert "\ufffd" not in found


@pytest.mark.parametrize("content_type", [None, "application/rss+xml; charset=UTF-16LE"])
def test_utf16_without_bom_or_declaration_is_recognised(content_type: str | None) -> None:
    result = parsed("simplepie/feed-utf16le.xml", content_type=content_type)
    assert result.outcome is FeedOutcome.OK and len(result.entries) == 1
    assert "utf-16-le document re-encoded as UTF-8" in result.warnings
    assert result.entries[0].title and "\ufffd" not in result.entries[0].title


def test_charset_from_content_type_is_used_when_the_document_has_none() -> None:
    # Latin-1 bytes with no declaration: the HTTP charset is the only evidence.
    result = parsed("miniflux/no_encoding_ISO-8859-1.xml", content_type="application/rss+xml; charset=ISO-8859-1")
    assert result.warnings == ()
    assert "é" in " ".join(entry.title or "" for entry in result.entries)


# --- titles --------------------------------------------------------------------------


def test_html_markup_in_atom_titles_is_stripped() -> None:
    titles = [entry.title or "" for entry in parsed("feedjira/google_alerts_atom.xml").entries]
    assert not any("<" in title or "&" in title.replace(" & ", "") for title in titles)
    assert titles[1] == "Slack Stock Has a Compelling Story and the Numbers to Back It Up"


def test_entity_text_inside_cdata_is_decoded_and_sup_dropped() -> None:
    title = first("rbren-rss-parser/craigslist.rss").title
    assert title == "Bright, Spacious Beautiful Victorian (oakland north / temescal) $4300 3bd 1930ft2"


def test_double_escaped_ampersand_is_decoded_once_more() -> None:
    assert parsed("rome/lr.xml").title == "KCRW's Left, Right & Center"


def test_padded_cdata_titles_and_typographic_quotes() -> None:
    assert first("feedjira/HuffPostCanada.xml").title == "Winnipeg High School Orders Custom Hijabs For Muslim Athletes"
    assert (
        first("prof18-rss-parser/feed-char-escape.xml").title
        == "Where the Grass is Greener, Except When It\u2019s \u2018Nonfunctional Turf\u2019"
    )


def test_items_without_title_keep_none() -> None:
    result = parsed("ranchero-rsparser/scriptingNews.rss")
    assert len(result.entries) == 50
    assert sum(entry.title is None for entry in result.entries) == 39


# --- links ---------------------------------------------------------------------------


def test_relative_atom_links_resolve_against_the_feed_url() -> None:
    result = parsed("node-feedparser/tpm.atom", "https://talkingpointsmemo.com/feed/all")
    assert len(result.entries) == 20
    entry = result.entries[0]
    assert entry.url == "/livewire/hannity-announces-fox-hired-sebastian-gorka-national-security-strategist"
    assert entry.canonical_url == (
        "https://talkingpointsmemo.com/livewire/hannity-announces-fox-hired-sebastian-gorka-national-security-strategist"
    )
    assert all(e.canonical_url.startswith("https://talkingpointsmemo.com/") for e in result.entries)


def test_relative_rss_links_resolve_against_the_feed_url() -> None:
    entry = first(
        "node-feedparser/rss-with-relative-urls.xml", "https://www.arcgames.com/en/games/neverwinter/news/rss"
    )
    assert entry.canonical_url.startswith("https://www.arcgames.com/en/games/neverwinter/news/detail/10743874-")


def test_xml_base_is_honoured() -> None:
    entry = first("feed-rs/rss_2.0_example_2.xml", "https://elsewhere.example/feed")
    assert entry.canonical_url.startswith("http://www.nasa.gov/press-release/")
    result = parsed("ranchero-rsparser/expertopinionent.atom", "https://elsewhere.example/feed")
    assert all(e.canonical_url.startswith("http://expertopinionent.typepad.com/") for e in result.entries)


def test_feedburner_orig_link_beats_the_feedproxy_link() -> None:
    entry = first("feedjira/TechCrunch.xml")
    assert entry.url.startswith("http://feedproxy.google.com/~r/Techcrunch/")
    assert entry.canonical_url == (
        "http://techcrunch.com/2011/11/02/angies-list-prices-ipo-at-11-to-13-per-share-valued-at-over-600m/"
    )
    assert entry.provenance["canonical_url"] == "feedburner:origLink"


def test_guid_beats_a_click_redirect_link() -> None:
    entry = first("node-feedparser/wapowellness.xml")
    assert entry.url.startswith("http://feeds.washingtonpost.com/click.phdo?")
    assert entry.canonical_url.startswith(
        "http://www.washingtonpost.com/lifestyle/wellness/schools-minister-to-kids-fitness-and-nutrition-needs/"
    )


def test_items_sharing_one_guid_and_link_are_all_kept() -> None:
    # All four items really do point at one section page; deduplication is not the parser's job.
    result = parsed("rome/issue137-rss.xml")
    assert len(result.entries) == 4
    assert {entry.canonical_url for entry in result.entries} == {"http://www.moe.gov.sg/media/spotlight/"}


def test_google_redirect_wrappers_are_unwrapped() -> None:
    entry = parsed("feedjira/google_alerts_atom.xml").entries[1]
    assert entry.url.startswith("https://www.google.com/url?")
    assert entry.canonical_url == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    assert entry.provenance["canonical_url"] == "link (unwrapped from a Google redirect)"


def test_google_news_redirects_stay_as_given() -> None:
    # news.google.com article links encode the target opaquely; there is nothing to unwrap.
    assert first("prof18-rss-parser/feed-test-source.xml").canonical_url.startswith("https://news.google.com/")


def test_tracking_parameters_are_dropped_from_canonical_url_only() -> None:
    entry = first("trafilatura/feed.json")
    assert "utm_medium=JSONFeed" in entry.url
    assert entry.canonical_url == (
        "https://www.npr.org/2021/10/29/1050315385/keller-rinaudo-how-can-delivery-drones-save-lives"
    )


def test_spaces_around_sitemap_loc_are_stripped() -> None:
    entry = first("advertools/news_sitemap.xml")
    assert (
        entry.url
        == entry.canonical_url
        == "https://www.nytimes.com/interactive/2020/05/11/magazine/quarantine-insanity.html"
    )


# --- identifiers ---------------------------------------------------------------------


def test_entry_ids_are_kept_verbatim_or_none() -> None:
    assert first("ranchero-rsparser/livemint.xml").entry_id == "1559104147038"
    assert all(entry.entry_id is None for entry in parsed("ranchero-rsparser/aktuality.rss").entries)
    youtube = first("feedjira/youtube_atom.xml").entry_id
    assert youtube is not None and youtube.startswith("yt:video:")


# --- dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("rbren-rss-parser/uolNoticias.rss", "2018-09-24T22:42:40Z"),  # "Seg, 24 Set 2018 19:42:40 -0300"
        ("feed-rs/rss_2.0_ilmessaggero.xml", "2022-11-15T23:38:15Z"),  # "mer, 16 nov 2022 00:38:15 +0100"
        ("prof18-rss-parser/feed-image-enclosure.xml", "2022-11-22T12:16:00Z"),  # "22.11.2022 12:16:00", no zone
        ("prof18-rss-parser/feed-test-hindi-channel-image.xml", "2021-01-29T16:42:00Z"),  # free-form, no zone
        ("ranchero-rsparser/kc0011.rss", "2020-01-10T14:33:00Z"),  # "2020/1/10 14:33:00", no zone
        ("ranchero-rsparser/curt.json", "2018-01-06T08:00:00Z"),  # "2018-01-06T08:00", no zone
        ("prof18-rss-parser/feed-test-xsl.xml", "2019-05-17T05:00:00Z"),  # "06:00:00 BST"
        ("feed-rs/rss_2.0_example_2.xml", "2019-08-01T20:15:00Z"),  # "16:15 EDT", no seconds
        ("node-feedparser/rss-with-relative-urls.xml", "2017-12-07T18:00:29Z"),  # two-digit year
        ("ranchero-rsparser/bio.rdf", "2019-08-27T00:00:00Z"),  # dc:date, a day only
        ("feedjira/a10.xml", "2020-05-14T10:00:18Z"),
    ],
)
def test_publication_dates(name: str, published: str) -> None:
    assert first(name).published_at == utc(published)


def test_dates_without_a_zone_say_how_they_were_read() -> None:
    assert first("ranchero-rsparser/kc0011.rss").provenance["published_at"] == (
        "published (dateparser, no zone: read as UTC)"
    )


def test_dc_date_stands_in_for_a_missing_publication_date_and_says_so() -> None:
    entry = first("rome/slashdot.xml")
    assert entry.published_at == entry.updated_at is not None
    assert entry.provenance["published_at"].startswith("updated, for want of a publication date")


def test_epoch_dc_date_is_read_as_seconds() -> None:
    entry = first("feedjira/InvalidDateFormat.xml")
    assert entry.published_at == datetime(2017, 10, 16, 15, 10, tzinfo=UTC)  # pubDate wins
    assert entry.updated_at == datetime.fromtimestamp(1518478934, tz=UTC)


def test_undated_entries_stay_undated() -> None:
    result = parsed("miniflux/rdf_UTF8.xml")
    assert len(result.entries) == 60
    assert all(entry.published_at is None and entry.updated_at is None for entry in result.entries)


def test_rss_items_are_not_given_an_update_date_they_do_not_have() -> None:
    assert first("prof18-rss-parser/feed-char-escape.xml").updated_at is None


def test_channel_date_is_not_the_item_date() -> None:
    entries = parsed("miniflux/urdu_UTF8.xml").entries
    assert max(entry.published_at for entry in entries if entry.published_at) < datetime(2018, 2, 1, tzinfo=UTC)


# --- media, Dublin Core, podcasts ------------------------------------------------------


def test_dublin_core_creators_and_categories() -> None:
    entry = first("rbren-rss-parser/guardian.rss")
    assert entry.authors
    assert entry.tags
    assert entry.summary and "<" not in entry.summary


def test_feed_level_facts_reach_every_entry() -> None:
    result = parsed("feed-rs/rss_2.0_spiegel.xml")
    entry = result.entries[0]
    assert entry.feed_title == result.title == "SPIEGEL Update \u2013 Die Nachrichten"
    assert entry.language == result.language == "de"
    assert entry.source_name == "corpus"
    assert entry.feed_url == "https://feeds.example.org/feed-rs/rss_2.0_spiegel.xml"


def test_a_drupal_style_us_date_is_read_from_the_items_time_element() -> None:
    rss = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>County news</title><link>https://county.example/</link>
<item><title>Board meets</title><link>https://county.example/news/board-meets</link>
<description>&lt;span&gt;&lt;time datetime="2019-05-03T19:21:28Z"&gt;Fri, 05/03/2019 - 15:21&lt;/time&gt;&lt;/span&gt;
The board met.</description>
<pubDate>Fri, 05/03/2019 - 15:21</pubDate></item>
</channel></rss>"""
    parsed = parse_feed_document(rss, url="https://county.example/rss.xml", content_type=None, source_name="county")
    (entry,) = parsed.entries
    assert entry.published_at == datetime(2019, 5, 3, 19, 21, 28, tzinfo=UTC)
    assert "<time datetime> in the description" in entry.provenance["published_at"]


@pytest.mark.parametrize(
    ("document", "unit"),
    [
        (
            b'<rss version="2.0"><channel><title>T</title><item><title>A</title><link>mailto:x@y.test</link></item>'
            b"</channel></rss>",
            "entries",
        ),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "m5", "title": "A"}]}', "items"),
        (
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>ftp://x.test/a</loc></url>'
            b"</urlset>",
            "URLs",
        ),
    ],
)
def test_every_reader_reports_skipped_entries_and_the_outcome_the_same_way(document: bytes, unit: str) -> None:
    parsed = parse_feed_document(document, url="https://example.test/feed", content_type=None, source_name="t")
    assert parsed.outcome is FeedOutcome.EMPTY and parsed.entries == ()
    assert len(parsed.skipped) == 1
    assert parsed.detail.endswith(f": none of its 1 {unit} is usable"), parsed.detail


def test_the_sources_language_orders_a_numeric_date_the_feed_does_not_explain() -> None:
    rss = b"""<rss version="2.0"><channel><title>County news</title>
<item><title>Board meets</title><link>https://county.example/news/board-meets</link>
<pubDate>05/03/2019 15:21</pubDate></item></channel></rss>"""
    url = "https://county.example/rss.xml"
    unknown = parse_feed_document(rss, url=url, content_type=None, source_name="county")
    american = parse_feed_document(rss, url=url, content_type=None, source_name="county", source_language="en-US")
    assert unknown.entries[0].published_at == datetime(2019, 3, 5, 15, 21, tzinfo=UTC)
    assert "ambiguous" in unknown.entries[0].provenance["published_at"]
    assert american.entries[0].published_at == datetime(2019, 5, 3, 15, 21, tzinfo=UTC)
    assert "region US" in american.entries[0].provenance["published_at"]
