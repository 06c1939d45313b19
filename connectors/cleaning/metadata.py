"""Article metadata read from what a page declares about itself.

CMSs publish the same facts several times over: schema.org JSON-LD, Open Graph and
Twitter cards, Dublin Core and ad-hoc ``<meta>`` names, ``<time>`` elements, the
``<title>`` tab text and the visible ``<h1>``. This module reads those declarations from a
parsed tree and chooses among them by how reliable each kind is in general, never by
host name or page. It must never raise on a malformed page: a declaration it cannot read
counts as absent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.core import get_global
from lxml.html import HtmlElement

from connectors.cleaning.repairs import clean_inline_text

# Title separators CMSs put between the headline and the site name in <title>.
_TITLE_SEPARATOR = re.compile(r"\s+[|\-\u2013\u2014\u00b7\u2022\\/>\u00bb~:]{1,2}\s+|\s*(?:::|\u00bb|\|)\s*")
_WORD = re.compile(r"\w+")
_ARTICLE_TYPE = re.compile(r"(?i)(article|posting|report|review|story)$")
# Wrappers CMSs put around JSON-LD for old XHTML parsers: CDATA sections, HTML comments.
_JSON_WRAPPERS = re.compile(r"^\s*(?://\s*)?(?:<!\[CDATA\[|<!--)|(?://\s*)?(?:\]\]>|-->)\s*$")
_URL_DAY = re.compile(r"(?<!\d)((?:19|20)\d{2})[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?!\d)")
_EARLIEST_PLAUSIBLE = dt.date(1995, 1, 1)
_WESTMOST_OFFSET = dt.timedelta(hours=-10)
_EASTMOST_OFFSET = dt.timedelta(hours=14)
# Country-code domains registered worldwide as generic names, which say nothing about where
# a site is: the list Google Search treats as generic (Search Central, "Managing
# multi-regional and multilingual sites").
_GENERIC_COUNTRY_DOMAINS = frozenset(
    [
        "ad",
        "as",
        "bz",
        "cc",
        "cd",
        "co",
        "dj",
        "fm",
        "io",
        "la",
        "me",
        "ms",
        "nu",
        "sc",
        "sr",
        "su",
        "tv",
        "tk",
        "ws",
        "ai",
    ]
)
# "en-US", "fr_CA", "it": a language subtag and an optional two-letter region.
_LOCALE = re.compile(r"(?i)^([a-z]{2,3})(?:[-_]([a-z]{2}))?(?![a-z])")
_DATE_PREFIX = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})")
# "T23:15:0": templates that print time fields without zero padding ("G:i:s" style).
_UNPADDED_TIME = re.compile(r"T(\d{1,2}:\d{1,2}(?::\d{1,2})?)(?![\d.])")
# <meta> names that carry the publication time, most specific first.
_PUBLISHED_META = (
    "article:published_time",
    "og:article:published_time",
    "article:published",
    "datepublished",
    "og:published_time",
    "published_time",
    "parsely-pub-date",
    "sailthru.date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "dc:date.issued",
    "dcterms:issued",
    "dcterms:created",
    "dc:date.created",
    "dc:date",
    "dcterms:date",
    "date",
)
_DUBLIN_CORE_DOT = re.compile(r"^(dc|dcterms?)\.")
_TITLE_META = ("dc:title", "dcterm:title", "dcterms:title", "og:title", "twitter:title", "parsely-title")
_SITE_NAME_META = ("og:site_name", "application-name", "apple-mobile-web-app-title", "twitter:site")
_AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "dc:creator", "byl")
_DESCRIPTION_META = ("og:description", "dc:description", "description", "twitter:description")
_IMAGE_META = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")


@dataclass(frozen=True)
class Declarations:
    """Everything a page says about itself, gathered in one pass over the tree."""

    meta: dict[str, list[str]] = field(default_factory=dict)
    json_ld: list[dict[str, Any]] = field(default_factory=list)
    title_element: str = ""
    headings: list[str] = field(default_factory=list)
    language: str = ""
    time_elements: list[str] = field(default_factory=list)

    def first_meta(self, names: Iterable[str]) -> tuple[str, str] | None:
        """(name, content) of the first named <meta> with non-blank content."""
        for name in names:
            for content in self.meta.get(name, ()):
                if content.strip():
                    return name, content.strip()
        return None

    def articles(self) -> list[dict[str, Any]]:
        """JSON-LD objects describing the article itself, article types first."""
        typed = [item for item in self.json_ld if any(_ARTICLE_TYPE.search(kind) for kind in _types(item))]
        return typed or [item for item in self.json_ld if "headline" in item or "datePublished" in item]


def read_declarations(tree: HtmlElement) -> Declarations:
    meta: dict[str, list[str]] = {}
    # Values declared with property= (RDFa, the Open Graph way) come before name= ones: when
    # a page declares both they usually agree, and when not the property is the curated one.
    for attribute in ("property", "name", "itemprop", "http-equiv"):
        for element in tree.iter("meta"):
            content = element.get("content")
            if content is None:
                continue
            # Several names may share one attribute ("og:title twitter:title"); Dublin Core
            # is written both "DC.title" and "dc:title".
            for name in (element.get(attribute) or "").lower().split():
                meta.setdefault(_DUBLIN_CORE_DOT.sub(r"\1:", name), []).append(content)
    title_element = tree.find(".//title")
    return Declarations(
        meta=meta,
        json_ld=list(_json_ld_objects(tree)),
        title_element=clean_inline_text(title_element.text_content()) if title_element is not None else "",
        headings=[text for h1 in tree.iter("h1") if (text := clean_inline_text(h1.text_content()))],
        language=(tree.get("lang") or tree.get("xml:lang") or "").strip(),
        time_elements=[
            value
            for element in tree.iter("time")
            if "datepublished" in (element.get("itemprop") or "").lower() or element.get("pubdate") is not None
            if (value := element.get("datetime") or "")
        ],
    )


def _json_ld_objects(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(_JSON_WRAPPERS.sub("", script.text), strict=False)
        except (ValueError, RecursionError):
            continue
        yield from _flatten_json_ld(data, depth=0)


def _flatten_json_ld(data: object, depth: int) -> Iterator[dict[str, Any]]:
    # Bounded: JSON-LD nests (@graph, mainEntity, lists), but a hostile page could nest forever.
    if depth > 4:
        return
    if isinstance(data, list):
        for item in data:
            yield from _flatten_json_ld(item, depth + 1)
    elif isinstance(data, dict):
        yield data
        for key in ("@graph", "mainEntity", "mainEntityOfPage"):
            if isinstance(data.get(key), list | dict):
                yield from _flatten_json_ld(data[key], depth + 1)


def _types(item: dict[str, Any]) -> list[str]:
    kind = item.get("@type")
    return [str(kind)] if isinstance(kind, str) else [str(each) for each in kind] if isinstance(kind, list) else []


def _names(value: object) -> list[str]:
    """Names from a JSON-LD person/organisation value: a string, an object or a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _names(value.get("name"))
    if isinstance(value, list):
        return [name for item in value[:20] for name in _names(item)]
    return []


def _text_values(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value[:50] if isinstance(item, str)]
    return []


# --- title -------------------------------------------------------------------------------


def site_names(declarations: Declarations, url: str | None) -> list[str]:
    """What the site calls itself: Open Graph, app names, JSON-LD publisher, host name."""
    names = [content for name in _SITE_NAME_META for content in declarations.meta.get(name, ())]
    for item in declarations.json_ld:
        names.extend(_names(item.get("publisher")))
        if "WebSite" in _types(item) or "Organization" in _types(item):
            names.extend(_names(item))
    if url:
        host = (urlsplit(url).hostname or "").removeprefix("www.")
        if host:
            names.extend([host, host.split(".")[0]])
    return [clean_inline_text(name).lstrip("@") for name in names if name and name.strip()]


def choose_title(declarations: Declarations, url: str | None) -> tuple[str | None, str]:
    """(title, method): declared headline metadata first, then the cleaned <title>.

    Editors set JSON-LD ``headline`` and ``og:title`` for sharing, so they rarely carry the
    site name the CMS appends to ``<title>``; when they do, it is stripped like it is from
    ``<title>``.
    """
    sites = site_names(declarations, url)
    for item in declarations.articles():
        names = [clean_inline_text(value) for key in ("headline", "name") for value in _text_values(item.get(key))]
        if names := [name for name in names if name]:
            # headline and name usually agree; when they differ, one is often a label
            # ("Wikimedia list article"), and the tab text tells which is the headline.
            best = max(names, key=lambda name: _shared_words(name, declarations.title_element))
            return strip_site_name(best, sites, leading=False), "json-ld headline"
    declared = declarations.first_meta(_TITLE_META)
    if declared is not None and (cleaned := clean_inline_text(declared[1])):
        return strip_site_name(cleaned, sites, leading=False), f"meta {declared[0]}"
    if declarations.title_element:
        return title_from_tab_text(declarations.title_element, declarations.headings, sites), "title element"
    if declarations.headings:
        return declarations.headings[0], "h1"
    return None, "none"


def strip_site_name(title: str, sites: Iterable[str], *, leading: bool = True) -> str:
    """Drop a trailing (or, if ``leading``, a leading) segment naming the site ("Headline | Site").

    A site name is matched whole or by any of its own segments ("Example.cz - News you can
    use" also matches "Example.cz"). Leading segments are only stripped from tab text:
    in sharing titles a leading "Product — ..." is more often part of the headline.
    """
    folded_sites = {_fold(part) for site in sites for part in (site, *_TITLE_SEPARATOR.split(site)) if _fold(part)}
    segments = _TITLE_SEPARATOR.split(title)
    if len(segments) < 2:
        return title
    separators = _TITLE_SEPARATOR.findall(title)
    # A title made only of site-name segments ("Example News - Latest Headlines" on a home
    # page) has no headline to keep.
    if all(_fold(segment) in folded_sites for segment in segments):
        return title
    if _fold(segments[-1]) in folded_sites:
        return title[: title.rfind(separators[-1])].strip()
    if leading and _fold(segments[0]) in folded_sites:
        return title[title.find(separators[0]) + len(separators[0]) :].strip()
    return title


def title_from_tab_text(tab_text: str, headings: list[str], sites: Iterable[str]) -> str:
    """The headline inside a ``<title>``, which CMSs build as "Headline | Section | Site".

    A visible ``<h1>`` that equals a leading part of the tab text confirms where the headline
    ends; otherwise the site name is stripped, and failing that the last segment is taken to
    be the site when what remains is still a plausible headline (three words or more).
    """
    folded_headings = {_fold(heading) for heading in headings}
    separators = list(_TITLE_SEPARATOR.finditer(tab_text))
    for separator in separators:
        if _fold(tab_text[: separator.start()]) in folded_headings:
            return tab_text[: separator.start()].strip()
    stripped = strip_site_name(tab_text, sites)
    if stripped != tab_text or not separators:
        return stripped
    head = tab_text[: separators[-1].start()].strip()
    return head if len(_WORD.findall(head)) >= 3 else tab_text


def _shared_words(text: str, other: str) -> int:
    return len(set(_fold(text).split()) & set(_fold(other).split()))


def _fold(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


# --- dates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationTime:
    """When the page says it was published: the day as the page states it, and the UTC
    instant when the declaration carried a time of day."""

    day: dt.date
    instant: dt.datetime | None
    # True when the page wrote the time in UTC ("Z", "+00:00"): its day is then UTC's, not
    # necessarily the newsroom's.
    stated_in_utc: bool = False


def declared_publication(declarations: Declarations, today: dt.date) -> tuple[PublicationTime | None, str]:
    """(publication time, method) from structured data; (None, "none") if nothing usable."""
    for item in declarations.articles():
        for value in _text_values(item.get("datePublished")) + _text_values(item.get("dateCreated")):
            if (parsed := parse_publication(value, today)) is not None:
                return parsed, "json-ld datePublished"
    for name in _PUBLISHED_META:
        for value in declarations.meta.get(name, ()):
            if (parsed := parse_publication(value, today)) is not None:
                return parsed, f"meta {name}"
    for value in declarations.time_elements:
        if (parsed := parse_publication(value, today)) is not None:
            return parsed, "time element"
    return None, "none"


def day_in_url(url: str | None) -> dt.date | None:
    """The day a CMS wrote into the article's path ("/2020/02/17/slug", "/2020-02-17-slug")."""
    match = _URL_DAY.search(urlsplit(url).path) if url else None
    if match is None:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def settle_day_with_url(published: PublicationTime, url: str | None) -> PublicationTime:
    """Prefer the URL's day when it is one day off a declared instant.

    Declared times are often stamped in UTC, which moves evening articles to the next day;
    the CMS built the URL from the newsroom's local day, which is the publication day a
    reader sees. A URL day further off is an unrelated number, not a correction.
    """
    url_day = day_in_url(url)
    if url_day is None or abs((url_day - published.day).days) != 1:
        return published
    # The URL's day must be the instant's day somewhere people publish news (UTC-10 to
    # UTC+14): a URL built from the day a story was started is otherwise not a correction.
    instant = published.instant
    if (
        instant is not None
        and not (instant + _WESTMOST_OFFSET).date() <= url_day <= (instant + _EASTMOST_OFFSET).date()
    ):
        return published
    return PublicationTime(url_day, instant, published.stated_in_utc)


def settle_day_in_declared_region(
    published: PublicationTime, declarations: Declarations, url: str | None = None
) -> PublicationTime:
    """The local day of a UTC-stamped instant, when the page's locale or domain places it.

    Many CMSs stamp publication times in UTC, which moves evening articles in the Americas
    to the next day and early-morning ones east of Greenwich to the previous day. A page
    declaring a region ("en-US", "fr_CA"), served from a country's domain (".ca") in a
    language official there, or declaring a language official in few countries ("it")
    names the time zones its newsroom can be in; when every one of them gives the same day,
    that is the day readers saw. When the zones disagree the UTC day is kept.
    """
    if published.instant is None or not published.stated_in_utc:
        return published
    zones = _zones_of_locale(declarations, url)
    days = {published.instant.astimezone(zone).date() for zone in zones}
    if len(days) == 1 and (local_day := days.pop()) != published.day:
        return PublicationTime(local_day, published.instant, published.stated_in_utc)
    return published


def _zones_of_locale(declarations: Declarations, url: str | None) -> list[ZoneInfo]:
    values = [declarations.language]
    values += [
        value for name in ("content-language", "og:locale", "language") for value in declarations.meta.get(name, ())
    ]
    values += [value for item in declarations.articles() for value in _text_values(item.get("inLanguage"))]
    locales = [match.groups() for value in values if (match := _LOCALE.match(value.strip()))]
    regions = {region.upper() for _, region in locales if region}
    if regions:
        return _zones(frozenset(regions))
    languages = {language.lower() for language, _ in locales}
    country = _country_domain(url)
    if country and (not languages or any(country in _official_territories(language) for language in languages)):
        return _zones(frozenset({country}))
    if languages:
        return _zones(frozenset(territory for language in languages for territory in _official_territories(language)))
    return []


def _country_domain(url: str | None) -> str | None:
    """The country of the URL's country-code top-level domain, unless it is sold as generic."""
    suffix = (urlsplit(url).hostname or "").rsplit(".", 1)[-1] if url else ""
    if len(suffix) != 2 or not suffix.isalpha() or suffix in _GENERIC_COUNTRY_DOMAINS:
        return None
    return "GB" if suffix == "uk" else suffix.upper()


@cache
def _official_territories(language: str) -> frozenset[str]:
    territory_languages: Mapping[str, Any] = get_global("territory_languages")
    return frozenset(
        territory
        for territory, languages in territory_languages.items()
        if languages.get(language, {}).get("official_status") in ("official", "de_facto_official")
    )


@lru_cache(maxsize=256)  # a page may declare any mix of regions; bound what it can pin
def _zones(territories: frozenset[str]) -> list[ZoneInfo]:
    territory_zones: Mapping[str, Any] = get_global("territory_zones")
    zones = []
    for territory in territories:
        for name in territory_zones.get(territory, ()):
            try:
                zones.append(ZoneInfo(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return zones


def _pad_time(match: re.Match[str]) -> str:
    return "T" + ":".join(part.zfill(2) for part in match.group(1).split(":"))


def parse_publication(value: str, today: dt.date) -> PublicationTime | None:
    """An ISO 8601 date or date-time, kept only if it is a plausible publication day."""
    text = value.strip()
    if not _DATE_PREFIX.match(text):
        return None
    instant: dt.datetime | None = None
    stated_in_utc = False
    try:
        iso = _UNPADDED_TIME.sub(_pad_time, text.replace("Z", "+00:00").replace(" ", "T", 1))
        parsed = dt.datetime.fromisoformat(iso)
        day = parsed.date()
        # A time without a zone is the site's local time, which we cannot place in UTC.
        instant = parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None
        stated_in_utc = parsed.utcoffset() == dt.timedelta(0)
    except ValueError:
        match = _DATE_PREFIX.match(text)
        assert match is not None
        try:
            day = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            return None
    if not _EARLIEST_PLAUSIBLE <= day <= today + dt.timedelta(days=1):
        return None
    return PublicationTime(day, instant, stated_in_utc)


# --- people, summary, picture, language, topics --------------------------------------------


def declared_authors(declarations: Declarations) -> tuple[tuple[str, ...], str]:
    for item in declarations.articles():
        names = _distinct(clean_inline_text(name) for name in _names(item.get("author")))
        names = tuple(name for name in names if not _looks_like_url(name))
        if names:
            return names, "json-ld author"
    for name in _AUTHOR_META:
        values = [clean_inline_text(value) for value in declarations.meta.get(name, ())]
        people = _distinct(value for value in values if value and not _looks_like_url(value))
        if people:
            return people, f"meta {name}"
    return (), "none"


def declared_description(declarations: Declarations) -> tuple[str | None, str]:
    found = declarations.first_meta(_DESCRIPTION_META)
    if found is not None:
        return clean_inline_text(found[1]), f"meta {found[0]}"
    for item in declarations.articles():
        for value in _text_values(item.get("description")):
            if cleaned := clean_inline_text(value):
                return cleaned, "json-ld description"
    return None, "none"


def declared_image(declarations: Declarations, url: str | None) -> tuple[str | None, str]:
    found = declarations.first_meta(_IMAGE_META)
    if found is not None:
        return _absolute(found[1], url), f"meta {found[0]}"
    for item in declarations.articles():
        image = item.get("image")
        candidates = image if isinstance(image, list) else [image]
        for candidate in candidates[:5]:
            link = candidate.get("url") if isinstance(candidate, dict) else candidate
            if isinstance(link, str) and link.strip():
                return _absolute(link.strip(), url), "json-ld image"
    return None, "none"


def declared_language(declarations: Declarations) -> tuple[str | None, str]:
    """The primary language subtag ("en" from "en-US" or "en_GB"), lower case."""
    candidates = [("html lang", declarations.language)]
    candidates += [
        (f"meta {name}", value)
        for name in ("content-language", "og:locale", "language")
        for value in declarations.meta.get(name, ())
    ]
    candidates += [
        ("json-ld inLanguage", value)
        for item in declarations.articles()
        for value in _text_values(item.get("inLanguage"))
    ]
    for method, value in candidates:
        primary = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
        if re.fullmatch(r"[a-z]{2,3}", primary):
            return primary, method
    return None, "none"


def declared_topics(declarations: Declarations) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(categories, tags): sections the CMS filed the article under, and its keywords."""
    categories = list(declarations.meta.get("article:section", ()))
    tags = list(declarations.meta.get("article:tag", ()))
    for item in declarations.articles():
        categories.extend(_text_values(item.get("articleSection")))
        keywords = item.get("keywords")
        tags.extend(keywords.split(",") if isinstance(keywords, str) else _text_values(keywords))
    if not tags:
        for value in [*declarations.meta.get("keywords", ()), *declarations.meta.get("news_keywords", ())]:
            tags.extend(value.split(","))
    return _distinct(map(clean_inline_text, categories)), _distinct(map(clean_inline_text, tags))


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return tuple(seen.values())


def _looks_like_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "www.", "/"))


def _absolute(link: str, base: str | None) -> str:
    try:
        return urljoin(base, link) if base else link
    except ValueError:
        return link
