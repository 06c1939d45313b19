"""Language of the article body with a confidence, by py3langid (offline, model shipped in the wheel).

py3langid counts its byte n-gram features with a Python loop over a DFA, one step per byte,
which was most of this enricher's cost. ``_CompiledCounting`` walks the same DFA in a
compiled loop (numba, as the dedup signatures do) and leaves everything else (text
encoding, scoring, normalisation) to py3langid. It must never change an answer: the counts, their
order and hence every score are the library's own (tests compare the two on real texts).
It overrides py3langid's private ``_raw_score``, so a new py3langid must pass that test
before its pin in constraints.txt moves.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
from py3langid.langid import MODEL_FILE, RAW_FLOOR, LanguageIdentifier

from pipeline.compiled import compiled
from pipeline.enrichers.base import Enricher, worker_resource
from schemas import CleanedArticle, LanguageGuess

# A few paragraphs are enough for a confident guess; classifying more costs time (the
# classifier is linear in text length) without changing the answer on news articles.
_SAMPLE_CHARS = 800


class _CompiledCounting(LanguageIdentifier):  # type: ignore[misc]
    """py3langid's identifier with its per-byte DFA walk compiled.

    The model's scanner is an Aho-Corasick automaton over byte n-grams, each state naming
    at most one feature; the walk and the count of each feature met, in the order first met,
    are one compiled loop (``_feature_counts``).
    """

    def __init__(self, nb_ptc: npt.ArrayLike, *args: Any, **kwargs: Any) -> None:
        # The model ships its per-feature scores as float16, which NumPy widens to float32
        # for every product, row by row, per article: two thirds of the scoring. Widened
        # once here (exact: every float16 is a float32), the products are the same to the
        # bit, for 28 MB more per worker.
        super().__init__(np.asarray(nb_ptc, dtype=np.float32), *args, **kwargs)
        self._next_state = np.frombuffer(self.tk_nextmove, dtype=np.uint32)  # a view: the model stays one copy
        self._row_offset = np.asarray(self.tk_row, dtype=np.int64) << 8
        self._feature_of_state = np.asarray(self.tk_output, dtype=np.int64)
        self._features = int(self._feature_of_state.max()) + 1

    def _raw_score(self, text: bytes) -> npt.NDArray[np.float32]:
        data = np.frombuffer(text, dtype=np.uint8)
        model = (self._next_state, self._row_offset, self._feature_of_state)
        distinct, counts = _feature_counts(*model, data, self._features)
        if not len(distinct):
            # py3langid's own answer for a featureless text.
            fill = 0.0 if self._norm_probs else RAW_FLOOR
            return np.full(len(self.nb_classes), fill, dtype=np.float32)
        log_counts = np.log1p(counts.astype(np.float32))
        # np.take copies the same rows as indexing, at a third of the cost.
        rows = np.take(self.nb_ptc, distinct, axis=0)
        scores: npt.NDArray[np.float32] = log_counts @ rows + self.nb_pc
        return scores


@compiled
def _feature_counts(
    next_state: npt.NDArray[np.uint32],
    row_offset: npt.NDArray[np.int64],
    feature_of_state: npt.NDArray[np.int64],
    data: npt.NDArray[np.uint8],
    features: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The features the DFA meets over ``data``, each once in the order first met, and how often each is met.

    py3langid sums the features in that order (a Counter's), and float sums depend on
    order: the same order keeps every score bit for bit.
    """
    slot = np.full(features, -1, dtype=np.int32)  # half the bytes to fill per call: found <= data.size
    distinct = np.empty(data.size, dtype=np.int64)
    counts = np.zeros(data.size, dtype=np.int64)
    found = 0
    state = np.int64(0)
    for byte in data:
        state = np.int64(next_state[row_offset[state] + byte])
        feature = feature_of_state[state]
        if feature >= 0:
            if slot[feature] < 0:
                slot[feature] = found
                distinct[found] = feature
                found += 1
            counts[slot[feature]] += 1
    return distinct[:found], counts[:found]


@functools.cache  # read-only once loaded (see pipeline/__init__.py): half a second saved per micro-batch
def _shared_identifier() -> LanguageIdentifier:
    identifier = _CompiledCounting.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.classify("compiled or loaded from numba's cache here, before a local service forks its workers")
    return identifier


class LanguageEnricher(Enricher):
    name = "language"

    @worker_resource
    def _identifier(self) -> LanguageIdentifier:
        return _shared_identifier()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        code, probability = self._identifier.classify(f"{article.title}\n{article.body[:_SAMPLE_CHARS]}")
        return {"detected_language": LanguageGuess(code=code, confidence=round(float(probability), 4))}
