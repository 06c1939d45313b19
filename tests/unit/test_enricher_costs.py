"""What keeps enrichment cheap across micro-batches without changing its answers."""

from __future__ import annotations

import pickle

from pipeline.enrichers.language import LanguageEnricher
from schemas import CleanedArticle, SourceKind, SourceRef
from schemas.timestamps import utc_now


def test_every_batch_s_language_enricher_shares_one_loaded_model() -> None:
    # Each micro-batch unpickles fresh enrichers; the model (half a second to load) must not be loaded again.
    first = LanguageEnricher()
    again = pickle.loads(pickle.dumps(first))
    assert first._identifier is again._identifier
    article = CleanedArticle(
        article_id="seed-lang",
        title="Die Brücke",
        body="Die neue Brücke über den Fluss wird im nächsten Frühjahr für den Verkehr freigegeben.",
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="test"),
    )
    assert again.enrich(article)["detected_language"].code == "de"
