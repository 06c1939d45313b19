"""MinHash signatures and LSH band keys of article bodies, for near-duplicate and same-story lookup.

Every worker, on every runner and after every restart, must compute the same signature
for the same body, or copies would not meet: hashing is keyed only by constants in this
module (blake2b and a fixed-seed permutation table), never by Python's per-process salted
``hash()`` or a random seed. Changing those constants changes every band key, so an index
filled before the change no longer matches; this module must never do that silently
(bump ``SIGNATURE_VERSION``, which is part of every band key).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

SIGNATURE_VERSION = 1
_WORD = re.compile(r"\w+")
_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64(0xFFFFFFFF)
_PERMUTATION_SEED = 20260301
# Words too common to say anything about what a story is about (story layer only).
_STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "more",
        "most",
        "my",
        "new",
        "no",
        "not",
        "now",
        "of",
        "on",
        "one",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "said",
        "says",
        "she",
        "so",
        "some",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "two",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "would",
        "year",
        "years",
        "you",
        "your",
    ]
)

Signature = npt.NDArray[np.uint32]


def words(text: str) -> list[str]:
    """Case-, accent-form- and punctuation-blind words, as the fingerprint layer sees them."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str, size: int) -> set[str]:
    """Overlapping runs of ``size`` words; a body shorter than that is one shingle."""
    tokens = words(text)
    if len(tokens) <= size:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


LEDE_WORDS = 60


def story_terms(text: str, title: str = "") -> set[str]:
    """The content words of the headline and the lede: what event an article reports.

    Only the lede (the first ``LEDE_WORDS`` words), because reports of one event share
    their who-what-where up front, while the background further down is shared with
    reports of other events too (whole bodies grouped unrelated articles on one topic).
    """
    lede = " ".join(text.split()[:LEDE_WORDS])
    return {w for w in words(f"{title} {lede}") if w not in _STOP_WORDS and len(w) > 2 and not w.isdigit()}


@cache
def _permutations(count: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    generator = np.random.Generator(np.random.PCG64(_PERMUTATION_SEED))
    # a, b < 2**32 so a * h + b (h < 2**32) cannot overflow 64 bits before the modulo.
    a = generator.integers(1, 1 << 32, size=count, dtype=np.uint64)
    b = generator.integers(0, 1 << 32, size=count, dtype=np.uint64)
    return a, b


def _hash32(item: str) -> int:
    return int.from_bytes(hashlib.blake2b(item.encode("utf-8"), digest_size=4).digest(), "little")


def minhash(items: Iterable[str], permutations: int) -> Signature:
    hashes = np.fromiter((_hash32(i) for i in items), dtype=np.uint64)
    a, b = _permutations(permutations)
    if hashes.size == 0:
        return np.full(permutations, 0xFFFFFFFF, dtype=np.uint32)
    permuted = (np.outer(hashes, a) + b) % _MERSENNE & _MAX_HASH
    return permuted.min(axis=0).astype(np.uint32)


def similarity(left: Signature, right: Signature) -> float:
    """Estimated Jaccard similarity of the two sets the signatures were made from."""
    return float(np.count_nonzero(left == right)) / len(left)


@cache  # a pure function of its arguments, asked for on every signed article
def optimal_bands(threshold: float, permutations: int) -> tuple[int, int]:
    """(bands, rows) minimising missed pairs above ``threshold`` plus false candidates below it.

    Missed pairs weigh four times as much as false candidates: candidates are checked
    against the whole signature anyway, so a false one costs a lookup, a missed one a copy.
    """
    grid = np.linspace(0.0, 1.0, 401)
    best: tuple[float, int, int] | None = None
    for bands in range(1, permutations + 1):
        rows = permutations // bands
        if rows == 0:
            break
        candidate = 1.0 - (1.0 - grid**rows) ** bands
        below, above = grid < threshold, grid >= threshold
        false_positive = float(np.trapezoid(candidate[below], grid[below])) if below.any() else 0.0
        false_negative = float(np.trapezoid(1.0 - candidate[above], grid[above])) if above.any() else 0.0
        cost = false_positive + 4.0 * false_negative
        if best is None or cost < best[0]:
            best = (cost, bands, rows)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True)
class LshScheme:
    """How signatures are cut into bands: the same scheme on every worker, or copies never meet."""

    name: str
    permutations: int
    bands: int
    rows: int

    @classmethod
    def for_threshold(cls, name: str, threshold: float, permutations: int) -> LshScheme:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"{name} similarity threshold must be in (0, 1], got {threshold}")
        bands, rows = optimal_bands(threshold, permutations)
        return cls(name, permutations, bands, rows)

    def band_keys(self, signature: Signature) -> list[str]:
        keys = []
        for band in range(self.bands):
            chunk = signature[band * self.rows : (band + 1) * self.rows].tobytes()
            digest = hashlib.blake2b(chunk, digest_size=10).hexdigest()
            keys.append(f"{self.name}{SIGNATURE_VERSION}:{self.bands}x{self.rows}:{band}:{digest}")
        return keys


_BASE64 = "b64:"


def encode_signature(signature: Signature) -> str:
    # Base64 rather than hex: a third less of what the dedup index keeps per article.
    return _BASE64 + base64.b64encode(signature.astype("<u4").tobytes()).decode("ascii")


def decode_signature(text: str) -> Signature:
    # Indexes written before the base64 encoding hold hex; they stay readable until they expire.
    raw = base64.b64decode(text[len(_BASE64) :]) if text.startswith(_BASE64) else bytes.fromhex(text)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


def jaccard(left: Sequence[str] | set[str], right: Sequence[str] | set[str]) -> float:
    """Exact Jaccard similarity, for explanations and the offline baseline."""
    a, b = set(left), set(right)
    return len(a & b) / len(a | b) if a or b else 1.0
