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


def test_vectorised_language_counting_scores_exactly_as_py3langid_on_real_texts() -> None:
    # The NumPy feature counting must change no score, not even in the last bit.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from newswire.testing.dedup_corpus import real_texts
    from pipeline.enrichers.language import _SAMPLE_CHARS, _shared_identifier

    library = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = _shared_identifier()
    assert type(ours) is not LanguageIdentifier
    bodies = [body for _, body in real_texts(minimum_words=0)]
    samples = [body[:_SAMPLE_CHARS] for body in bodies] + [body[:40].upper() for body in bodies]
    # Shorter than the scanner's deepest state, featureless, uncased scripts, lone multi-byte letters.
    samples += ["", " ", "a", "ab", "12345", "!!!", "\u00e9", "日本語のテキスト", "Россия"]
    assert len(samples) > 300
    for sample in samples:
        assert ours._decide(sample).tobytes() == library._decide(sample).tobytes(), sample[:60]
        assert ours.classify(sample) == library.classify(sample)
