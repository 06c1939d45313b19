"""MinHash signatures and LSH band keys of article bodies, for near-duplicate and same-story lookup.

Every worker, on every runner and after every restart, must compute the same signature
for the same body, or copies would not meet: hashing is keyed only by constants in this
module and ``kernels`` (FNV-1a and SplitMix64 constants, blake2b for band keys, a fixed-seed
permutation table), never by Python's per-process salted ``hash()`` or a random seed. Changing those
constants changes every band key, so an index filled before the change no longer
matches; this module must never do that silently (bump ``SIGNATURE_VERSION``, which is
part of every band key, or ``BAND_KEY_LAYOUT`` when only the keys' spelling changes).
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

from pipeline.dedup import kernels
from pipeline.dedup.kernels import FNV_PRIME, MIX_1, MIX_2

SIGNATURE_VERSION = 2  # 2: multiply-shift MinHash over vectorised FNV term hashes
_WORD = re.compile(r"\w+")
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
    lede = " ".join(text.split(maxsplit=LEDE_WORDS)[:LEDE_WORDS])  # never split the rest of a long body
    return {w for w in words(f"{title} {lede}") if w not in _STOP_WORDS and len(w) > 2 and not w.isdigit()}


@cache
def _permutations(count: int, seed: int = _PERMUTATION_SEED) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    generator = np.random.Generator(np.random.PCG64(seed))
    # Multiply-shift hashing: odd multipliers over 64-bit keys, the top 32 bits kept.
    a = generator.integers(1, 1 << 63, size=count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = generator.integers(0, 1 << 63, size=count, dtype=np.uint64)
    return a, b


# Code points of a term that reach its hash; longer terms (URLs, run-together text) add only their length.
_TERM_CODE_POINTS = 48


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: every input bit moves every output bit."""
    values = (values ^ (values >> np.uint64(30))) * MIX_1
    values = (values ^ (values >> np.uint64(27))) * MIX_2
    return values ^ (values >> np.uint64(31))


def term_hashes(terms: Sequence[str]) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each term (FNV-1a over its code points, then mixed), all terms in one pass.

    NumPy lays the terms out as a matrix of code points, one row a term, and the compiled
    loop hashes each row's run; ``\\w`` terms hold no NUL, so padding is told apart from text.
    """
    if not terms:
        return np.empty(0, dtype=np.uint64)
    if max(map(len, terms)) > _TERM_CODE_POINTS:
        terms = [t if len(t) <= _TERM_CODE_POINTS else f"{t[:_TERM_CODE_POINTS]}{len(t)}" for t in terms]
    if "\0" in "".join(terms):  # NUL is what pads the matrix: it never reaches a hash
        terms = [t.replace("\0", "") for t in terms]
    points = np.array(terms, dtype=np.str_).view(np.uint32).reshape(len(terms), -1)
    lengths = np.fromiter(map(len, terms), dtype=np.intp, count=len(terms))
    return _fnv_of_runs(points.ravel(), np.arange(len(terms)) * points.shape[1], lengths)


def _fnv_of_runs(
    points: npt.NDArray[np.uint32], starts: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """FNV-1a over each run ``points[start : start + length]`` of code points, then mixed."""
    # Contiguous intp arrays whatever the caller sliced: each other layout would be compiled anew.
    return kernels.fnv_of_runs(points, np.ascontiguousarray(starts, np.intp), np.ascontiguousarray(lengths, np.intp))


_WORD_CHARACTER = re.compile(r"\w")


@cache  # read-only once built: which code points of the Basic Multilingual Plane ``\\w`` matches
def _bmp_word_characters() -> npt.NDArray[np.bool_]:
    return np.array([_WORD_CHARACTER.match(chr(c)) is not None for c in range(1 << 16)])


def _is_word(points: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    """Whether each code point is one ``words`` keeps (``\\w``, asked of the same regex engine)."""
    table = _bmp_word_characters()
    if int(points.max()) < len(table):
        return table[points]
    astral = points >= len(table)  # emoji, historic scripts, mathematical letters: rare, asked one by one
    matched = table[np.where(astral, 0, points)]
    others = np.unique(points[astral])
    matched |= np.isin(points, others[[_WORD_CHARACTER.match(chr(c)) is not None for c in others.tolist()]])
    return matched


def word_hashes(text: str) -> npt.NDArray[np.uint64]:
    """``term_hashes(words(text))``, without making a string of each word.

    The normalised text becomes one array of code points; words are its runs of ``\\w``
    characters, and each run is hashed where it lies. Runs longer than
    ``_TERM_CODE_POINTS`` are hashed as ``term_hashes`` hashes them, from their string.
    """
    # NFKC leaves ASCII as it is, and casefold lowers it: the common case skips both passes.
    normal = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    points = np.frombuffer(normal.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if points.size == 0:
        return np.empty(0, dtype=np.uint64)
    edges = np.flatnonzero(np.diff(_is_word(points), prepend=False, append=False))
    starts, ends = edges[0::2], edges[1::2]
    if starts.size == 0:
        return np.empty(0, dtype=np.uint64)
    lengths = ends - starts
    hashes = _fnv_of_runs(points, starts, np.minimum(lengths, _TERM_CODE_POINTS))
    for index in np.flatnonzero(lengths > _TERM_CODE_POINTS).tolist():
        hashes[index] = term_hashes([normal[int(starts[index]) : int(ends[index])]])[0]
    return hashes


def shingle_hashes(tokens: Sequence[str], size: int) -> npt.NDArray[np.uint64]:
    """A hash per overlapping run of ``size`` tokens (the runs of ``shingles``), from one hash per token."""
    return _shingles_of(term_hashes(tokens), size)


def _shingles_of(hashed: npt.NDArray[np.uint64], size: int) -> npt.NDArray[np.uint64]:
    if hashed.size == 0:
        hashed = term_hashes([""])  # no words: one empty shingle, as ``shingles`` has it
    width = min(size, len(hashed))
    runs = len(hashed) - width + 1
    combined = hashed[:runs]
    for offset in range(1, width):
        combined = _mix(combined * FNV_PRIME + hashed[offset : offset + runs])
    return combined


def minhash_of(hashes: npt.NDArray[np.uint64], permutations: int, *, seed: int = _PERMUTATION_SEED) -> Signature:
    """MinHash signature of a set given by its members' 64-bit hashes (duplicates change nothing).

    ``seed`` draws another table of the same family: only for measuring what one draw costs
    (``bench.dedup.signature_bias``); every signature an index holds uses the default.
    """
    if hashes.size == 0:
        return np.full(permutations, 0xFFFFFFFF, dtype=np.uint32)
    a, b = _permutations(permutations, seed)
    return kernels.min_hashes(a, b, np.ascontiguousarray(hashes, np.uint64))


def minhash(items: Iterable[str], permutations: int) -> Signature:
    """MinHash signature of a set of strings, each hashed as one term."""
    return minhash_of(term_hashes(list(items)), permutations)


def body_signature(text: str, size: int, permutations: int) -> Signature:
    """The near-duplicate signature of a body: MinHash over its word shingles of ``size`` words."""
    return minhash_of(_shingles_of(word_hashes(text), size), permutations)


def story_signature(text: str, title: str, permutations: int) -> Signature:
    """The same-story signature: MinHash over the content words of headline and lede."""
    return minhash_of(term_hashes(sorted(story_terms(text, title))), permutations)


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
        """One key per band: ``<name><SIGNATURE_VERSION><BAND_KEY_LAYOUT>:`` and 12 base64url characters.

        The scheme's shape and the band's number are hashed in (blake2b's personalisation)
        rather than spelled out, so two schemes or two bands never share a key, and the key
        is 19 characters instead of 34: an article writes some 45 of them, and SQLite stores
        each twice (the row and its key index).
        """
        raw, width = signature.tobytes(), 4 * self.rows  # bands of ``rows`` uint32 values
        blake2b = hashlib.blake2b
        digests = b"".join(
            blake2b(raw[band * width : (band + 1) * width], digest_size=_BAND_DIGEST, person=person).digest()
            for band, person in enumerate(_band_persons(self.bands, self.rows))
        )
        # 9 bytes are 12 base64 characters with no padding: one encode for all bands, then slices.
        text = base64.urlsafe_b64encode(digests).decode("ascii")
        prefix = f"{self.name}{SIGNATURE_VERSION}{BAND_KEY_LAYOUT}:"
        step = 4 * _BAND_DIGEST // 3
        return [prefix + text[start : start + step] for start in range(0, len(text), step)]

    def legacy_band_keys(self, signature: Signature) -> list[str]:
        """The keys the earlier layout gave the same bands (``<name>2:<bands>x<rows>:<band>:<20 hex>``).

        Only looked up, never written, while an index may still hold them (``entries.BandLayoutEntry``).
        """
        raw, width = signature.tobytes(), 4 * self.rows
        prefix = f"{self.name}{SIGNATURE_VERSION}:{self.bands}x{self.rows}:"
        blake2b = hashlib.blake2b
        return [
            f"{prefix}{band}:{blake2b(raw[band * width : (band + 1) * width], digest_size=10).hexdigest()}"
            for band in range(self.bands)
        ]


# b: 72-bit base64url digests with the scheme folded into the hash. Keys of the earlier
# layout ("near2:12x10:<band>:<hex>", ``legacy_band_keys``) are still looked up while an index
# may hold them (``entries.BandLayoutEntry``), and expire with the horizon.
BAND_KEY_LAYOUT = "b"
_BAND_DIGEST = 9  # bytes; a false band match needs two of ~10^6 live values to collide in 72 bits


@cache
def _band_persons(bands: int, rows: int) -> tuple[bytes, ...]:
    return tuple(f"{bands}x{rows}:{band}".encode("ascii") for band in range(bands))


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
