"""extract_article on real captured pages (see tests/data/extraction/README.md)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

from connectors.cleaning.decoding import decode_html
from connectors.cleaning.extract import ExtractedPage, extract_article

DATA = Path(__file__).parents[1] / "data" / "extraction"


def page(name: str) -> bytes:
    return gzip.decompress((DATA / name).read_bytes())


def test_json_ld_in_cdata_gives_headline_author_and_date() -> None:
    article = extract_article(page("readability-theverge.html.gz"))
    assert article.title == "Apple\u2019s Vision Pro hands-on: the Retina display moment for headsets"
    assert article.methods.title == "json-ld headline"
    assert article.authors == ("Alex Heath",)
    assert article.published_on == dt.date(2023, 6, 7)
    assert article.published_at is not None and article.published_at.tzinfo == dt.UTC
    assert article.language == "en"
    assert article.text.count("\n\n") >= 3
    assert not article.text.startswith(article.title)


def test_site_name_is_stripped_from_the_sharing_title() -> None:
    article = extract_article(page("readability-ehow-1.html.gz"))
    assert article.title == "How to Build a Terrarium"


def test_dublin_core_property_wins_over_name() -> None:
    article = extract_article(page("readability-003-metadata-preferred.html.gz"))
    assert article.title == "Dublin Core property title"


def test_declared_publication_day_on_a_non_english_page() -> None:
    url = "http://www.detaykibris.com/yikilan-binalarkurtarma-calismalari-izmirden-goruntuler-2196g.htm"
    article = extract_article(page("mediacloud-1754856212.html.gz"), url)
    assert article.published_on == dt.date(2020, 10, 30)
    assert article.title is not None and "İzmir" in article.title


def test_entities_in_declarations_never_break_extraction() -> None:
    article = extract_article(page("readability-005-unescape-html-entities.html.gz"))
    assert isinstance(article, ExtractedPage)
    assert article.description is not None and "&amp;" not in article.description


def test_legacy_encoded_bytes_are_decoded_by_their_declaration() -> None:
    html = '<html><head><meta charset="windows-1251"><title>Новости дня</title></head><body></body></html>'
    assert decode_html(html.encode("cp1251")).count("Новости дня") == 1
    assert extract_article(html.encode("cp1251")).title == "Новости дня"


def test_empty_and_non_html_input_give_an_empty_page() -> None:
    assert extract_article("") == ExtractedPage()
    assert extract_article(b"\x00\x01\x02") == ExtractedPage()
    assert extract_article("   ").text == ""
