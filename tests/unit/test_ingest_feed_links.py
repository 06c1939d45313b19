"""Which link of a feed item the ingest service may fetch: a bare guid is not a link (issue 14, item 4)."""

from __future__ import annotations

import pytest

from connectors.feed_document import parse_feed_document

FEED_URL = "https://news.example/feed.xml"


def parse_item(item: str) -> tuple[list[str], tuple[str, ...]]:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://news.example/</link>'
        f"<item><title>Story</title>{item}</item><item><title>Other</title><link>https://news.example/ok</link>"
        "</item></channel></rss>"
    ).encode()
    parsed = parse_feed_document(body, url=FEED_URL, content_type="application/rss+xml", source_name="s")
    return [e.canonical_url for e in parsed.entries], parsed.skipped


@pytest.mark.parametrize(
    "item",
    [
        "<link></link><guid>m5</guid>",
        "<guid>m6</guid>",
        '<guid isPermaLink="false">m7</guid>',
        '<guid isPermaLink="true">/relative/path</guid>',
    ],
)
def test_an_item_whose_only_link_is_a_bare_guid_is_skipped_with_its_reason(item: str) -> None:
    urls, skipped = parse_item(item)
    assert urls == ["https://news.example/ok"], "nothing is requested for the token resolved against the feed URL"
    [reason] = skipped
    assert "guid" in reason and "is not a URL" in reason


@pytest.mark.parametrize(
    "item",
    [
        '<link> </link><guid isPermaLink="false">https://news.example/story</guid>',
        "<guid>https://news.example/story</guid>",
    ],
)
def test_a_guid_that_is_an_absolute_url_may_stand_in_for_the_link(item: str) -> None:
    urls, skipped = parse_item(item)
    assert urls == ["https://news.example/story", "https://news.example/ok"] and not skipped
