"""extract_article on real captured pages (see tests/data/extraction/README.md)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

from connectors.cleaning.extract import BodyRules, ExtractedPage, extract_article
from connectors.http.charsets import decode_text

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
    assert decode_text(html.encode("cp1251"), charset_header=None).text.count("Новости дня") == 1
    assert extract_article(html.encode("cp1251")).title == "Новости дня"


def test_empty_and_non_html_input_give_an_empty_page() -> None:
    assert extract_article("") == ExtractedPage()
    assert extract_article(b"\x00\x01\x02") == ExtractedPage()
    assert extract_article("   ").text == ""


EXPRESS_URL = (
    "https://www.express.co.uk/news/world/1206313/"
    "hong-kong-latest-china-protesters-police-china-hong-kong-riots-Polytechnic-University"
)


def test_standfirst_printed_as_a_heading_above_the_body_is_dropped() -> None:
    # The page prints its description as an <h3> in the article header, outside the
    # element holding the body paragraphs; the annotated body starts after it.
    article = extract_article(page("zyte-624fcd90.html.gz"), EXPRESS_URL)
    assert article.description is not None and article.description.startswith("CHINA has sent troops")
    assert "CHINA has sent troops" not in article.text
    assert article.text.startswith("This comes after police said the demonstrators")


def test_standfirst_that_is_the_lead_paragraph_of_the_body_stays() -> None:
    # Same declared description, but here it is the first <p> inside the body element.
    url = "https://www.sciencealert.com/we-finally-have-a-global-geological-map-of-saturn-s-moon-titan"
    article = extract_article(page("zyte-359fee22.html.gz"), url)
    assert article.description is not None and article.description.startswith("WASHINGTON (Reuters) - Scientists")
    assert article.text.startswith("WASHINGTON (Reuters) - Scientists on Monday unveiled")


def test_linked_teasers_inside_the_body_are_dropped() -> None:
    # A "DON'T MISS" block: headlines of other articles, each a link, between body paragraphs.
    article = extract_article(page("zyte-624fcd90.html.gz"), EXPRESS_URL)
    assert "China furious at Macron for Hong Kong protest jibe" not in article.text
    assert "Lakers vs Nets" not in article.text
    assert "Polytechnic University" in article.text


def test_utc_stamp_is_placed_on_the_day_of_the_declared_region() -> None:
    # og:locale en_US and article:published_time 2020-05-02T02:54:29Z: every US time zone
    # was still on 1 May, the day the page was annotated with.
    url = "https://abc7ny.com/traffic/penn-station-to-close-overnight-for-cleaning/6144149/"
    article = extract_article(page("mediacloud-1594754655.html.gz"), url)
    assert article.published_on == dt.date(2020, 5, 1)
    assert article.published_at == dt.datetime(2020, 5, 2, 2, 54, 29, tzinfo=dt.UTC)


def test_undeclared_date_is_the_latest_htmldate_finds_not_an_archive_date() -> None:
    # A blog page with no declared date: older days on it belong to the archive links.
    url = "https://blog.goo.ne.jp/umaichi_news/e/52743e20f825567d4e9889be58ec06b9"
    article = extract_article(page("mediacloud-1660064054.html.gz"), url)
    assert article.published_on == dt.date(2020, 7, 12)
    assert article.methods.published == "htmldate"


def test_short_message_page_is_not_doubted_into_a_sweep_of_excerpts() -> None:
    # A one-message page followed by excerpts of other messages: trafilatura's main
    # extractor alone keeps the message, and a short body on a busy page is no sign of a
    # wrong block, so it is not swapped for readability's or jusText's longer text with
    # every excerpt in it. (Trafilatura's full mode, the default main reading, already
    # prefers the excerpts here: the price of its better reading of pages unlike this set.)
    url = "https://www.mensagensreflexao.com.br/quem-se-ama"
    article = extract_article(page("zyte-b3c19dd5.html.gz"), url, BodyRules(main_mode="fast"))
    assert article.methods.text == "trafilatura"
    assert article.text.startswith("Viver uma verdadeira experiência amorosa")
    assert "A vida requer da gente otimismo" not in article.text
