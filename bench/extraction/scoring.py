"""Scores for extracted bodies, days and titles, as the reference sets define them.

The body metric follows the Zyte benchmark's ``evaluate.py``: ``\\w+`` tokens (case kept),
4-token shingles, multiset TP/FP/FN per page, macro precision over pages with a non-empty
prediction, macro recall over all pages, F1 of the two macro averages. Nothing here may
know which extractor produced a prediction.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+", re.UNICODE)
_SHINGLE_SIZE = 4
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class BodyScore:
    """Per-page shingle counts; precision is None when the prediction was empty."""

    precision: float | None
    recall: float


def shingles(text: str) -> Counter[str]:
    tokens = _TOKEN.findall(text or "")
    # Like upstream, a text shorter than one shingle still yields one (shorter) shingle.
    count = max(1, len(tokens) - _SHINGLE_SIZE + 1)
    return Counter(" ".join(tokens[start : start + _SHINGLE_SIZE]) for start in range(count) if tokens)


def body_score(expected: str, predicted: str) -> BodyScore:
    truth, guess = shingles(expected), shingles(predicted)
    true_positive = sum((truth & guess).values())
    false_positive = sum((guess - truth).values())
    false_negative = sum((truth - guess).values())
    precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else None
    recall = true_positive / (true_positive + false_negative) if true_positive + false_negative else 0.0
    return BodyScore(precision, recall)


def macro_body_scores(scores: Sequence[BodyScore]) -> tuple[float, float, float]:
    """(precision, recall, F1) as the benchmark's README defines them."""
    precisions = [score.precision for score in scores if score.precision is not None]
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(score.recall for score in scores) / len(scores) if scores else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def same_day(expected: dt.date, predicted: dt.date | None) -> bool:
    return predicted is not None and predicted == expected


def comparable_title(title: str | None) -> str:
    """Entities decoded, Unicode compatibility forms folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", html.unescape(title or ""))
    return _WHITESPACE.sub(" ", text).strip()


def title_exact(expected: str, predicted: str | None) -> bool:
    return comparable_title(expected) == comparable_title(predicted)


def title_contains(expected: str, predicted: str | None) -> bool:
    """Either title holds the other, ignoring case: right headline, maybe with extra words."""
    truth, guess = comparable_title(expected).casefold(), comparable_title(predicted).casefold()
    return bool(truth and guess) and (truth in guess or guess in truth)


def page_f1(score: BodyScore) -> float:
    """One page's F1; an empty prediction has precision 0."""
    precision = score.precision or 0.0
    total = precision + score.recall
    return 2 * precision * score.recall / total if total else 0.0
