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

Rule for dates without a zone: they are read as UTC (a date alone as 00:00 UTC), and the
returned ``how`` says so, so provenance shows the guess. Dates before 1990 or after 2100
are refused as implausible for a web document.

This module never returns "now" and never raises: an unreadable date is ``None``.
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


class FeedDate(NamedTuple):
    at: datetime
    how: str  # which parser read it, and whether the no-zone rule applied


def parse_feed_date(raw: str | None, *, language: str | None = None) -> FeedDate | None:
    """The instant ``raw`` names, in UTC, or ``None`` when it names none we can trust.

    ``language`` (the feed's declared language, e.g. ``pt-BR``) is tried before English
    for names of days and months; without it dateparser tries every language it knows.
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
    read = _dateparser(text, _language_code(language))
    if read is None:
        return None
    return _plausible(read, "dateparser" if _TRAILING_ZONE.search(text) else "dateparser, no zone: read as UTC")


def _plausible(at: datetime, how: str) -> FeedDate | None:
    return FeedDate(at, how) if _EARLIEST <= at < _LATEST else None


def _language_code(language: str | None) -> str | None:
    if not language:
        return None
    code = language.strip().replace("_", "-").split("-")[0].lower()
    return code if code.isalpha() and 2 <= len(code) <= 3 else None


@lru_cache(maxsize=4096)
def _dateparser(text: str, language: str | None) -> datetime | None:
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
                at = dateparser.parse(text, languages=languages, settings=_DATEPARSER_SETTINGS)
        except (ValueError, OverflowError, LookupError, TypeError, AttributeError, IndexError):
            # dateparser raises assorted errors on odd input; for us that means "no date".
            continue
        if at is not None and at.tzinfo is not None:
            return at.astimezone(UTC)
    return None
