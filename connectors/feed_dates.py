"""The one way feed, JSON Feed and sitemap dates become UTC timestamps.

Order of parsers, and why:

1. feedparser's date parser, but only for the two shapes it reads correctly: RFC 822
   (``Tue, 21 Aug 2012 10:33:00 EST``) with a numeric zone or one of the North American /
   UT names it knows, and ISO 8601 / W3DTF (``2017-04-07T12:20:50+10:30``). Outside those
   shapes it answers confidently and wrongly: ``2020/1/10 14:33:00`` becomes 1 November,
   the epoch ``1518478934`` becomes 2015-07-03, and unknown zone names such as ``BST`` are
   silently read as UTC.
2. dateparser for everything else: localized names (``Seg, 24 Set 2018``, ``mer, 16 nov``),
   European numeric dates (``22.11.2022 12:16:00``, day first), free-form English
   (``Friday, January 29, 2021 04:42 PM``), other zone names and epoch seconds. It tries
   the feed's language with English, then a fixed list of common news languages. It is
   restricted to absolute dates: relative phrases ("2 hours ago") and partial dates
   ("May 2019") are refused, since completing them would stamp the time of parsing.

Numeric dates whose first two numbers could each be the day or the month
(``Fri, 05/03/2019 - 15:21``) are decided, in this order, by: a machine-readable value the
item also carries (``<time datetime="...">``: the caller passes it as ``machine_readable``);
a stated weekday that fits only one reading; the region of the feed's or source's language
(``en-US`` reads month first, ``en-GB`` and most others day first). When none decides, the
date is read day first and ``FeedDate.ambiguous`` says so, as does ``how``.

Rule for dates without a zone: they are read as UTC (a date alone as 00:00 UTC), and the
returned ``how`` says so, so provenance shows the guess. Dates before 1990 or after 2100
are refused as implausible for a web document.

A date can read correctly and still be false: feeds date items decades ahead (a real one
put all 150 in 2099). ``trusted_publication`` judges the dates of a fetched article
against the time of the fetch: one more than a tolerance after it is not trusted.

This module never returns "now" (the fetch time is the caller's, and says so) and never
raises: an unreadable date is ``None``.
"""

from __future__ import annotations

import calendar
import re
import warnings
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from feedparser.datetimes import _parse_date as feedparser_parse_date

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "mon|tue|wed|thu|fri|sat|sun"
# Zone names feedparser maps correctly; anything else goes to dateparser.
_FEEDPARSER_ZONES = "ut|utc|gmt|z|edt|est|cdt|cst|mdt|mst|pdt|pst|met|mest"
_RFC822 = re.compile(
    rf"^(?:(?:{_DAYS})[a-z]*\.?,?\s*)?\d{{1,2}}\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{2}}(?:\d{{2}})?"
    rf"\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s*(?P<zone>[+-]\d{{4}}|{_FEEDPARSER_ZONES})?$",
    re.IGNORECASE,
)
_ISO8601 = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?)?$",
    re.IGNORECASE,
)
_EPOCH = re.compile(r"^\d{9,10}$")
# A trailing zone in any of the spellings dateparser understands, for telling whether
# the UTC rule was applied.
_TRAILING_ZONE = re.compile(r"(?:\b[zZ]|[+-]\d{2}:?\d{2}|\b(?!AM\b|PM\b)[A-Z]{2,5}(?:[+-]\d{1,2})?)\s*$")
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# Long enough for any real date; longer strings are prose, and dateparser's cost grows with length.
_MAX_LENGTH = 80

# Tried when the feed declares no language (or its own fails): the languages most news
# feeds are written in. Not "every language dateparser knows": that costs about a second
# per process and mostly finds false matches in junk.
_COMMON_LANGUAGES = (
    "en", "de", "fr", "es", "pt", "it", "nl", "ru", "pl", "cs", "sk", "tr", "sv", "da", "nb",
    "fi", "el", "uk", "ro", "hu", "id", "ja", "zh", "ar", "hi",
)  # fmt: skip
_DATEPARSER_SETTINGS: dict[str, Any] = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "TIMEZONE": "UTC",
    "TO_TIMEZONE": "UTC",
    "PARSERS": ["timestamp", "custom-formats", "absolute-time"],
    "REQUIRE_PARTS": ["day", "month", "year"],
    "DATE_ORDER": "DMY",
}


# A day/month/year (or month/day/year) date, its weekday if stated, and the rest.
_NUMERIC_DATE = re.compile(
    r"^(?:(?P<weekday>[^\W\d_]+)\.?,?\s*)?(?P<first>\d{1,2})[/.-](?P<second>\d{1,2})[/.-](?P<year>\d{4})\b"
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Regions that write the month first; elsewhere numeric dates are day first.
_MONTH_FIRST_REGIONS = frozenset({"us", "ph", "pr", "gu", "as", "vi", "um", "mp", "fm", "mh", "pw"})


class FeedDate(NamedTuple):
    at: datetime
    how: str  # which parser read it, how an ambiguity was settled, whether the no-zone rule applied
    ambiguous: bool = False  # day and month could be either way round and nothing decided: a doubt


def parse_feed_date(
    raw: str | None, *, language: str | None = None, machine_readable: str | None = None
) -> FeedDate | None:
    """The instant ``raw`` names, in UTC, or ``None`` when it names none we can trust.

    ``language`` (the feed's declared language, e.g. ``pt-BR``) is tried before English
    for names of days and months, and its region orders an ambiguous numeric date;
    ``machine_readable`` is an ISO 8601 value the item carries beside ``raw`` (a
    ``<time datetime>``), which settles such a date.
    """
    if raw is None:
        return None
    text = " ".join(raw.split())
    if not text or len(text) > _MAX_LENGTH:
        return None
    if _EPOCH.match(text):
        return _plausible(datetime.fromtimestamp(int(text), tz=UTC), "epoch seconds")
    for shape, name in ((_RFC822, "RFC 822"), (_ISO8601, "ISO 8601")):
        match = shape.match(text)
        if match is None:
            continue
        parsed = feedparser_parse_date(text)
        if parsed is None:
            break
        try:
            at = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
        except (OverflowError, ValueError, OSError):
            return None
        return _plausible(at, name if match.group("zone") else f"{name}, no zone: read as UTC")
    zone = "dateparser" if _TRAILING_ZONE.search(text) else "dateparser, no zone: read as UTC"
    numeric = _NUMERIC_DATE.match(text)
    if numeric is not None:
        return _numeric(text, numeric, language, machine_readable, zone)
    read = _dateparser(text, _language_code(language))
    if read is None:
        return None
    return _plausible(read, zone)


def _numeric(
    text: str, numeric: re.Match[str], language: str | None, machine_readable: str | None, zone: str
) -> FeedDate | None:
    """A numeric date, with the day/month order decided as the module docstring says."""
    first, second = int(numeric["first"]), int(numeric["second"])
    code = _language_code(language)
    if first > 12 or second > 12 or first == second:  # only one reading (or both the same)
        order = "MDY" if first <= 12 < second else "DMY"
        read = _dateparser(text, code, order)
        return _plausible(read, zone) if read is not None else None
    day_first, month_first = _dateparser(text, code, "DMY"), _dateparser(text, code, "MDY")
    if day_first is None or month_first is None:
        return None
    readings = {"DMY": day_first, "MDY": month_first}
    if machine_readable:
        machine = parse_feed_date(machine_readable)
        if machine is not None and "ISO 8601" in machine.how:
            return FeedDate(machine.at, f"machine-readable {machine.how}; {text!r} has day and month ambiguous")
    weekday = (numeric["weekday"] or "").casefold()[:3]
    if weekday in _WEEKDAYS:
        fits = [order for order, at in readings.items() if _WEEKDAYS[at.weekday()] == weekday]
        if len(fits) == 1:
            return _plausible(readings[fits[0]], f"{zone}; {_ORDER_NAMES[fits[0]]}: the weekday fits only that")
    region = _region(language)
    if region is not None:
        order = "MDY" if region in _MONTH_FIRST_REGIONS else "DMY"
        return _plausible(readings[order], f"{zone}; {_ORDER_NAMES[order]}, as written in region {region.upper()}")
    dated = _plausible(readings["DMY"], f"{zone}; {AMBIGUOUS_DAY_MONTH}")
    return dated._replace(ambiguous=True) if dated is not None else None


_ORDER_NAMES = {"DMY": "day first", "MDY": "month first"}
# Said in ``how`` (and so in an entry's provenance) when nothing settled the order: the
# page fetcher turns it into the article's doubt flag.
AMBIGUOUS_DAY_MONTH = "day and month ambiguous: read day first"


def _region(language: str | None) -> str | None:
    parts = (language or "").strip().replace("_", "-").lower().split("-")
    region = next((p for p in parts[1:] if len(p) == 2 and p.isalpha()), None)
    return region


def _plausible(at: datetime, how: str) -> FeedDate | None:
    return FeedDate(at, how) if _EARLIEST <= at < _LATEST else None


def _language_code(language: str | None) -> str | None:
    if not language:
        return None
    code = language.strip().replace("_", "-").split("-")[0].lower()
    return code if code.isalpha() and 2 <= len(code) <= 3 else None


@lru_cache(maxsize=4096)
def _dateparser(text: str, language: str | None, order: str = "DMY") -> datetime | None:
    # Imported here: dateparser loads its language data on first use, which only
    # feeds with unusual dates should pay for.
    import dateparser  # type: ignore[import-untyped]

    first = [language, "en"] if language and language != "en" else ["en"]
    attempts = [first, list(_COMMON_LANGUAGES)]
    for languages in attempts:
        try:
            with warnings.catch_warnings():
                # dateparser warns about pytz/regex internals on some inputs; not ours to act on.
                warnings.simplefilter("ignore")
                at = dateparser.parse(text, languages=languages, settings={**_DATEPARSER_SETTINGS, "DATE_ORDER": order})
        except (ValueError, OverflowError, LookupError, TypeError, AttributeError, IndexError):
            # dateparser raises assorted errors on odd input; for us that means "no date".
            continue
        if at is not None and at.tzinfo is not None:
            return at.astimezone(UTC)
    return None


class TrustedPublication(NamedTuple):
    """The page's and the feed's publication times that can be believed, and the doubts."""

    page: datetime | None
    feed: datetime | None
    fallback: str | None  # set when every date was refused: use the fetch time, and say this
    flags: tuple[str, ...]


FUTURE_DATE_FLAG = "published_at_in_future"


def trusted_publication(
    page: datetime | None, feed: datetime | None, fetched_at: datetime, *, future_tolerance_s: float
) -> TrustedPublication:
    """Refuse publication times more than ``future_tolerance_s`` after ``fetched_at``.

    Nothing is published after it was fetched; a date that far ahead is a feed's or a
    page's mistake (a placeholder year, a wrong zone), never the article's time. The caller
    prefers the page's trusted date, then the feed's; if both were given and refused, the
    fetch time stands in, and ``fallback`` says so.
    """
    latest = fetched_at.timestamp() + future_tolerance_s
    given = (("page", page), ("feed", feed))
    refused = [(name, at) for name, at in given if at is not None and at.timestamp() > latest]
    if not refused:
        return TrustedPublication(page, feed, None, ())
    names = {name for name, _ in refused}
    page_ok = None if "page" in names else page
    feed_ok = None if "feed" in names else feed
    said = ", ".join(f"the {name}'s {at.isoformat()}" for name, at in refused)
    fallback = None
    if page_ok is None and feed_ok is None:
        fallback = f"fetch time ({said} is after the fetch by more than {future_tolerance_s:g} s)"
    return TrustedPublication(page_ok, feed_ok, fallback, (FUTURE_DATE_FLAG,))
