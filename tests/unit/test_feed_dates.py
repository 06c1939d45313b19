"""The one date rule of feeds and sitemaps: feedparser where it is right, dateparser elsewhere, never "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.feed_dates import parse_feed_date


@pytest.mark.parametrize(
    ("raw", "language", "expected", "how"),
    [
        ("Tue, 21 Aug 2012 10:33:00 EST", None, datetime(2012, 8, 21, 15, 33), "RFC 822"),
        ("Tue, 15 Nov 2022 20:15:04 Z", None, datetime(2022, 11, 15, 20, 15, 4), "RFC 822"),
        ("2017-04-07T12:20:50+10:30", None, datetime(2017, 4, 7, 1, 50, 50), "ISO 8601"),
        ("2006-01-11 16:43:22 -0800", None, datetime(2006, 1, 12, 0, 43, 22), "ISO 8601"),
        ("Sun, 10 Dec 17 13:01:36 -0800", None, datetime(2017, 12, 10, 21, 1, 36), "RFC 822"),
        # Shapes feedparser gets wrong: 1 November, 2015-07-03 and BST-as-UTC respectively.
        ("2020/1/10 14:33:00", None, datetime(2020, 1, 10, 14, 33), "dateparser, no zone: read as UTC"),
        ("1518478934", None, datetime(2018, 2, 12, 23, 42, 14), "epoch seconds"),
        ("Fri, 17 May 2019 06:00:00 BST", "en-gb", datetime(2019, 5, 17, 5, 0), "dateparser"),
        ("Seg, 24 Set 2018 19:42:40 -0300", None, datetime(2018, 9, 24, 22, 42, 40), "dateparser"),
        ("mer, 16 nov 2022 00:38:15 +0100", "it-IT", datetime(2022, 11, 15, 23, 38, 15), "dateparser"),
        ("22.11.2022 12:16:00", "cs", datetime(2022, 11, 22, 12, 16), "dateparser, no zone: read as UTC"),
        ("2018-01-06T08:00", None, datetime(2018, 1, 6, 8, 0), "ISO 8601, no zone: read as UTC"),
        ("2019-08-27", None, datetime(2019, 8, 27), "ISO 8601, no zone: read as UTC"),
    ],
)
def test_dates(raw: str, language: str | None, expected: datetime, how: str) -> None:
    parsed = parse_feed_date(raw, language=language)
    assert parsed is not None
    assert parsed.at == expected.replace(tzinfo=UTC)
    assert parsed.how == how


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "garbage",
        "2 hours ago",  # relative: would be stamped from the clock
        "yesterday",
        "May 2019",  # partial: the missing day would come from today
        "Mon, 01 Jan 2018 10:00:00 XYZ",  # unknown zone: feedparser would silently say UTC
        "Thu, 01 Jan 1970 00:00:00 GMT",  # before the web
        "9999-12-31T23:59:59Z",
        "x" * 500,
    ],
)
def test_no_trustworthy_date_is_none(raw: str | None) -> None:
    assert parse_feed_date(raw) is None


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=60), language=st.one_of(st.none(), st.text(max_size=8)))
def test_never_raises_and_is_always_utc(raw: str, language: str | None) -> None:
    parsed = parse_feed_date(raw, language=language)
    if parsed is not None:
        assert parsed.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "language", "machine", "expected", "says"),
    [
        # The real case: a US feed's "Fri, 05/03/2019" is 3 May (a Friday), not 5 March (a Tuesday).
        ("Fri, 05/03/2019 - 15:21", None, None, datetime(2019, 5, 3, 15, 21), "the weekday fits only that"),
        ("Tue, 05/03/2019 - 15:21", None, None, datetime(2019, 3, 5, 15, 21), "the weekday fits only that"),
        # A machine-readable value beside it settles the order, and gives the zone.
        ("05/03/2019 15:21", None, "2019-05-03T19:21:28Z", datetime(2019, 5, 3, 19, 21, 28), "machine-readable"),
        # The region of the language, when nothing in the item decides.
        ("05/03/2019 15:21", "en-US", None, datetime(2019, 5, 3, 15, 21), "region US"),
        ("05/03/2019 15:21", "en-gb", None, datetime(2019, 3, 5, 15, 21), "region GB"),
        # Only one reading exists: no doubt, whichever way round.
        ("05/13/2019 15:21", None, None, datetime(2019, 5, 13, 15, 21), "dateparser"),
        ("13/05/2019 15:21", None, None, datetime(2019, 5, 13, 15, 21), "dateparser"),
    ],
)
def test_day_month_order_of_numeric_dates(
    raw: str, language: str | None, machine: str | None, expected: datetime, says: str
) -> None:
    parsed = parse_feed_date(raw, language=language, machine_readable=machine)
    assert parsed is not None
    assert parsed.at == expected.replace(tzinfo=UTC)
    assert says in parsed.how and not parsed.ambiguous


def test_a_numeric_date_nothing_settles_is_read_day_first_and_flagged_as_a_doubt() -> None:
    parsed = parse_feed_date("05/03/2019 15:21", language="en")
    assert parsed is not None and parsed.ambiguous
    assert parsed.at == datetime(2019, 3, 5, 15, 21, tzinfo=UTC)
    assert "day and month ambiguous" in parsed.how


FETCHED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_date_decades_after_the_fetch_is_not_trusted_and_the_page_date_stands_in() -> None:
    from connectors.feed_dates import FUTURE_DATE_FLAG, trusted_publication

    page = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    trusted = trusted_publication(page, datetime(2099, 1, 1, tzinfo=UTC), FETCHED, future_tolerance_s=3600)
    assert (trusted.page, trusted.feed, trusted.fallback) == (page, None, None)
    assert trusted.flags == (FUTURE_DATE_FLAG,)


def test_when_every_date_is_in_the_future_the_fetch_time_stands_in_and_says_why() -> None:
    from connectors.feed_dates import FUTURE_DATE_FLAG, trusted_publication

    future = datetime(2099, 6, 1, tzinfo=UTC)
    trusted = trusted_publication(None, future, FETCHED, future_tolerance_s=3600)
    assert trusted.page is None and trusted.feed is None
    assert trusted.fallback is not None and "fetch time" in trusted.fallback and "2099-06-01" in trusted.fallback
    assert FUTURE_DATE_FLAG in trusted.flags


def test_a_date_within_the_tolerance_is_trusted() -> None:
    from connectors.feed_dates import trusted_publication

    soon = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # an hour ahead: a zone slip, within 6 h
    assert trusted_publication(soon, soon, FETCHED, future_tolerance_s=6 * 3600) == (soon, soon, None, ())
    assert trusted_publication(None, None, FETCHED, future_tolerance_s=0) == (None, None, None, ())
