"""Language of the article body with a confidence, by py3langid (offline, model shipped in the wheel).

py3langid counts its byte n-gram features with a Python loop over a DFA, one step per byte,
which was most of this enricher's cost. ``_CountingInNumPy`` counts the same features with
a handful of NumPy steps over the whole sample and leaves everything else (text encoding,
scoring, normalisation) to py3langid. It must never change an answer: the counts, their
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

from pipeline.enrichers.base import Enricher, worker_resource
from schemas import CleanedArticle, LanguageGuess

# A few paragraphs are enough for a confident guess; classifying more costs time (the
# classifier is linear in text length) without changing the answer on news articles.
_SAMPLE_CHARS = 800


class _CountingInNumPy(LanguageIdentifier):  # type: ignore[misc]
    """py3langid's identifier with its per-byte DFA walk replaced by vectorised steps.

    The model's scanner is an Aho-Corasick automaton over byte n-grams: its state after
    any text is the longest suffix of that text that is a node of its trie, so it depends
    only on the last ``depth`` bytes, ``depth`` being the trie's deepest node. The state at
    every position is therefore the walk from the start state over the ``depth`` bytes
    ending there: ``depth`` gathers over all positions at once instead of one Python step
    per byte.
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
        self._depth = self._deepest_state()

    def _deepest_state(self) -> int:
        """How many transitions from the start state reach the farthest state (breadth first)."""
        seen = np.zeros(len(self._row_offset), dtype=bool)
        seen[0] = True
        frontier = np.array([0], dtype=np.int64)
        depth = 0
        every_byte = np.arange(256, dtype=np.int64)
        while True:
            reached = []
            for chunk in range(0, len(frontier), 4096):  # a few MB at a time: the widest level is 100 MB whole
                rows = self._row_offset[frontier[chunk : chunk + 4096]]
                nexts = self._next_state[(rows[:, None] + every_byte).ravel()]
                reached.append(np.unique(nexts[~seen[nexts]]))
            frontier = np.unique(np.concatenate(reached)).astype(np.int64)
            if not len(frontier):
                return depth
            seen[frontier] = True
            depth += 1

    def _states(self, text: bytes) -> npt.NDArray[np.int64]:
        data = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
        states = np.zeros(len(data), dtype=np.int64)
        for back in range(min(self._depth, len(data)) - 1, -1, -1):
            # Positions from `back` on take one more step, over the byte `back` places behind them.
            states[back:] = self._next_state[self._row_offset[states[back:]] + data[: len(data) - back]]
        return states

    def _raw_score(self, text: bytes) -> npt.NDArray[np.float32]:
        features = self._feature_of_state[self._states(text)]
        features = features[features >= 0]
        if not len(features):
            # py3langid's own answer for a featureless text.
            fill = 0.0 if self._norm_probs else RAW_FLOOR
            return np.full(len(self.nb_classes), fill, dtype=np.float32)
        distinct, counts = _in_order_of_first_occurrence(features)
        log_counts = np.log1p(counts.astype(np.float32))
        # np.take copies the same rows as indexing, at a third of the cost.
        rows = np.take(self.nb_ptc, distinct, axis=0)
        scores: npt.NDArray[np.float32] = log_counts @ rows + self.nb_pc
        return scores


def _in_order_of_first_occurrence(
    features: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct features and how often each occurs, in the order they first occur.

    py3langid sums the features in that order (a Counter's), and float sums depend on
    order: the same order keeps every score bit for bit. Sorting (feature, position) pairs
    packed in one integer finds each feature's first position faster than
    ``np.unique(return_index=True)``'s stable argsort.
    """
    count = len(features)
    shift = max(count.bit_length(), 1)
    keys = np.sort((features << shift) | np.arange(count))
    sorted_features = keys >> shift
    starts = np.flatnonzero(np.concatenate(([True], sorted_features[1:] != sorted_features[:-1])))
    occurrences = np.diff(np.append(starts, count))
    order = np.argsort(keys[starts] & ((1 << shift) - 1))
    return sorted_features[starts][order], occurrences[order]


@functools.cache  # read-only once loaded (see pipeline/__init__.py): half a second saved per micro-batch
def _shared_identifier() -> LanguageIdentifier:
    return _CountingInNumPy.from_model_file(MODEL_FILE, norm_probs=True)


class LanguageEnricher(Enricher):
    name = "language"

    @worker_resource
    def _identifier(self) -> LanguageIdentifier:
        return _shared_identifier()

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        code, probability = self._identifier.classify(f"{article.title}\n{article.body[:_SAMPLE_CHARS]}")
        return {"detected_language": LanguageGuess(code=code, confidence=round(float(probability), 4))}
