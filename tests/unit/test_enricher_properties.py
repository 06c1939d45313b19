"""No enricher raises on arbitrary text; if one ever does, Enrich records it and the article flows on."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.testing.util import assert_that
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.enrich import Enrich
from pipeline.enrichers import ENRICHERS, EntityEnricher
from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle, EnrichedArticle, SourceKind, SourceRef
from schemas.timestamps import utc_now

_ENRICHERS: list[Enricher] = [entry.build() for entry in ENRICHERS]
_MODEL_ENRICHER = EntityEnricher(recogniser="model")
for _enricher in [*_ENRICHERS, _MODEL_ENRICHER]:
    _enricher.setup()

_MIXED_SCRIPT = st.text(
    alphabet=st.sampled_from(
        list("Aa Zz.,-\u2014()\n\u00c9\u00e9\u0416\u0436\u05d0\u0627\u4e2d\u6587\ud55c\u00df'\u2019")
    ),
    max_size=400,
)
_ANY_TEXT = st.text(max_size=400)
_BINARY_LOOKING = st.binary(max_size=400).map(lambda b: b.decode("latin-1"))
_HUGE = st.sampled_from(["Gaza " * 40_000, "TEHRAN (Reuters) - " + "x" * 200_000, "Iraq.\n\n" * 20_000])
_BODIES = st.one_of(_ANY_TEXT, _MIXED_SCRIPT, _BINARY_LOOKING, _HUGE, st.just(" "), st.just(""))


def _article(title: str, body: str) -> CleanedArticle:
    # CleanedArticle refuses a blank body, so an empty one reaches enrichers only as a single
    # non-blank character; the model_construct path below covers the truly empty string.
    return CleanedArticle.model_construct(
        article_id="seed-prop",
        title=title or "t",
        body=body,
        summary=None,
        authors=[],
        tags=[],
        language=None,
        published_at=None,
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="p"),
        canonical_url=None,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_ANY_TEXT, body=_BODIES)
def test_no_enricher_raises_on_arbitrary_text(title: str, body: str) -> None:
    candidate = _article(title, body)
    for enricher in _ENRICHERS:
        values: dict[str, Any] = enricher.enrich(candidate)
        assert isinstance(values, dict)


class _Exploding(Enricher):
    name = "exploding"

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        raise RuntimeError(f"cannot read {len(article.body)} characters")


def test_a_raising_enricher_is_recorded_and_the_article_still_flows() -> None:
    cleaned = CleanedArticle(
        article_id="seed-prop",
        title="Gaza",
        body="BERLIN \u2014 Text.",
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="p"),
    )

    def check(outputs: list[EnrichedArticle]) -> None:
        (enriched,) = outputs
        assert [f.enricher for f in enriched.enrichment_failures] == ["exploding"]
        assert enriched.dateline is not None and enriched.dateline.place == "Berlin"

    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        outputs = pipeline | beam.Create([cleaned]) | Enrich([_Exploding(), ENRICHERS["dateline"].build()])
        assert_that(outputs, check)


@settings(max_examples=8, deadline=None)
@given(
    noise=st.one_of(_MIXED_SCRIPT, _BINARY_LOOKING),
    repeat=st.sampled_from([1, 3, 300]),
)
def test_the_model_recogniser_never_raises_on_english_looking_noise(noise: str, repeat: int) -> None:
    # The stop-word guess sends text with English function words to the model, so noise is
    # wrapped in them; repeat makes some inputs longer than the model's character bound.
    text = f"The minister of the {noise} said that it was in the city. " * repeat
    entities = _MODEL_ENRICHER.enrich(_article("The report", text))["entities"]
    assert all(entity.text for entity in entities)
