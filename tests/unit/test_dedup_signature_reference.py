"""The fast signature code computes bit for bit what the straightforward version computed.

Signatures and band keys are what copies meet by across workers, restarts and indexes
filled long ago (``SIGNATURE_VERSION``), so the faster tokenising, hashing and MinHash must
not change a single bit. The reference below is the algorithm as it stood before those
speed-ups, kept here on purpose: one string per word, one NumPy column per character
position, the whole outer product shifted before its minimum, one slice per band.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from newswire.testing.dedup_corpus import real_texts
from pipeline.dedup import signature
from pipeline.dedup.signature import (
    BAND_KEY_LAYOUT,
    SIGNATURE_VERSION,
    LshScheme,
    body_signature,
    minhash_of,
    story_signature,
    story_terms,
    term_hashes,
    word_hashes,
    words,
)
from tests.dedup_articles import REAL_TEXTS

_OFFSET, _PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def _reference_words(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())


def _reference_term_hashes(terms: Sequence[str]) -> npt.NDArray[np.uint64]:
    if not terms:
        return np.empty(0, dtype=np.uint64)
    if max(map(len, terms)) > 48:
        terms = [t if len(t) <= 48 else f"{t[:48]}{len(t)}" for t in terms]
    points = np.array(terms, dtype=np.str_).view(np.uint32).reshape(len(terms), -1).astype(np.uint64)
    hashes = np.full(len(terms), _OFFSET, dtype=np.uint64)
    for column in points.T:
        hashes = np.where(column != 0, (hashes ^ column) * _PRIME, hashes)
    return signature._mix(hashes)


def _reference_minhash(hashes: npt.NDArray[np.uint64], permutations: int) -> npt.NDArray[np.uint32]:
    if hashes.size == 0:
        return np.full(permutations, 0xFFFFFFFF, dtype=np.uint32)
    a, b = signature._permutations(permutations)
    return ((np.multiply.outer(hashes, a) + b) >> np.uint64(32)).min(axis=0).astype(np.uint32)


def _reference_body_signature(text: str, size: int, permutations: int) -> npt.NDArray[np.uint32]:
    tokens = _reference_words(text)
    hashed = _reference_term_hashes(tokens) if tokens else _reference_term_hashes([""])
    width = min(size, len(hashed))
    runs = len(hashed) - width + 1
    combined = hashed[:runs]
    for offset in range(1, width):
        combined = signature._mix(combined * _PRIME + hashed[offset : offset + runs])
    return _reference_minhash(combined, permutations)


def _reference_story_terms(text: str, title: str) -> set[str]:
    lede = " ".join(text.split()[:60])
    kept = _reference_words(f"{title} {lede}")
    return {w for w in kept if w not in signature._STOP_WORDS and len(w) > 2 and not w.isdigit()}


def _reference_band_keys(scheme: LshScheme, signed: npt.NDArray[np.uint32]) -> list[str]:
    keys = []
    for band in range(scheme.bands):
        chunk = signed[band * scheme.rows : (band + 1) * scheme.rows].tobytes()
        person = f"{scheme.bands}x{scheme.rows}:{band}".encode()
        digest = base64.urlsafe_b64encode(hashlib.blake2b(chunk, digest_size=9, person=person).digest()).decode()
        keys.append(f"{scheme.name}{SIGNATURE_VERSION}{BAND_KEY_LAYOUT}:{digest}")
    return keys


def _hex_band_keys(scheme: LshScheme, signed: npt.NDArray[np.uint32]) -> list[str]:
    """The keys of the layout before ``BAND_KEY_LAYOUT`` "b": scheme and band spelled out, hex digests."""
    keys = []
    for band in range(scheme.bands):
        chunk = signed[band * scheme.rows : (band + 1) * scheme.rows].tobytes()
        digest = hashlib.blake2b(chunk, digest_size=10).hexdigest()
        keys.append(f"{scheme.name}{SIGNATURE_VERSION}:{scheme.bands}x{scheme.rows}:{band}:{digest}")
    return keys


# What a tokeniser gets wrong first: NFKC that expands or adds spaces (ﬁ, ¨, ⑴, ㎒), case
# folding that grows a word (ß), non-Latin scripts, digits of other scripts, underscores,
# words at and past the 48 code points a hash reads, astral characters, a lone surrogate.
_AWKWARD = [
    "",
    "...",
    "   \n\t ",
    "one",
    "Ein Fluß, ﬁve ﬂights; STRASSE straße ¨x ⑴ ㎒ Ⅻ ½ x²",
    "Ελληνικά κείμενα και Кириллица, 中文新闻报道，日本語のニュース。",  # noqa: RUF001
    "snake_case_words and __dunder__ ٣٤٥ ߁߂ 12345678901234567890",
    "a" * 48 + " " + "b" * 49 + " " + "c" * 120 + " " + "é" * 60 + " mixed",
    "emoji 🙂 between 𝒜𝒷𝒸 words 𝟘𝟙 and \U0001f600x",  # noqa: RUF001
    "lone \ud800 surrogate and NUL \x00 inside",
    "https://www.example.com/a-very-long-path/with_underscores_and_more_text_than_forty_eight_points",
    "Ａｂｃ ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",  # noqa: RUF001
    "e\u0301 combining vs é composed, Å vs A\u030a, ǅ titlecase",
    "Digits: 2026 ١٢٣ ۴۵۶ ²³⁴ ①②③ 𝟘𝟙𝟚 𑁦𑁧𑁨 12a a12 _12 ½¼¾ and the THE The which Which whichever",  # noqa: RUF001
]


def _texts() -> list[str]:
    return [body for _, body in real_texts(ground_truth=REAL_TEXTS)] + _AWKWARD


def test_word_hashes_are_the_hashes_of_the_words_on_real_and_awkward_texts() -> None:
    texts = _texts()
    assert len(texts) > 100
    for text in texts:
        assert words(text) == _reference_words(text)
        expected = _reference_term_hashes(_reference_words(text))
        assert word_hashes(text).tolist() == expected.tolist(), text[:80]
        assert term_hashes(words(text)).tolist() == expected.tolist(), text[:80]


def test_term_hashes_match_on_terms_of_every_length_and_with_nul() -> None:
    terms = ["", "a", "ab\x00", "\x00", "x\x00y", "z" * 47, "z" * 48, "z" * 49, "q" * 300, "héllo", "🙂🙂"]
    assert term_hashes(terms).tolist() == _reference_term_hashes(terms).tolist()
    for term in terms:
        assert term_hashes([term]).tolist() == _reference_term_hashes([term]).tolist()


@pytest.mark.parametrize("permutations", [16, 128, 200])
def test_minhash_matches_the_shifted_outer_product(permutations: int) -> None:
    generator = np.random.Generator(np.random.PCG64(5))
    for size in (0, 1, 7, 800, 3000):
        hashes = generator.integers(0, 1 << 63, size=size, dtype=np.uint64) * np.uint64(2) + np.uint64(size % 2)
        assert minhash_of(hashes, permutations).tolist() == _reference_minhash(hashes, permutations).tolist()


def test_body_and_story_signatures_and_band_keys_are_bit_identical_on_real_texts() -> None:
    near = LshScheme.for_threshold("near", 0.8, 128)
    lede = LshScheme.for_threshold("lede", 0.3, 128)
    for text in _texts():
        for size in (1, 3, 5):
            assert body_signature(text, size, 128).tolist() == _reference_body_signature(text, size, 128).tolist()
        body = body_signature(text, 3, 128)
        assert near.band_keys(body) == _reference_band_keys(near, body)
        title = text[:60]
        terms = _reference_story_terms(text, title)
        assert story_terms(text, title) == terms
        story = story_signature(text, title, 128)
        assert story.tolist() == _reference_minhash(_reference_term_hashes(sorted(terms)), 128).tolist()
        assert lede.band_keys(story) == _reference_band_keys(lede, story)


def test_short_band_keys_group_real_texts_exactly_as_the_hex_keys_did() -> None:
    # Copies meet when a band key is equal, so the shorter layout must make the same keys
    # equal and the same keys distinct, across bands and schemes too; real texts plus
    # near-copies of them (their first words dropped) give bands that are shared.
    schemes = [LshScheme.for_threshold("near", 0.8, 128), LshScheme.for_threshold("lede", 0.3, 128)]
    schemes.append(LshScheme.for_threshold("lede", 0.5, 128))  # another shape under the same name
    texts = _texts()
    texts += [" ".join(t.split()[3:]) for t in texts]
    short_of: dict[str, str] = {}
    shared = 0
    for text in texts:
        for scheme in schemes:
            for signed in (body_signature(text, 3, 128), story_signature(text, text[:60], 128)):
                short = scheme.band_keys(signed)
                assert all(len(key) == len(short[0]) < 24 for key in short)
                for old, new in zip(_hex_band_keys(scheme, signed), short, strict=True):
                    shared += old in short_of
                    assert short_of.setdefault(old, new) == new
    assert shared > 1000, "the texts share bands, so equality is tested, not only distinctness"
    assert len(set(short_of.values())) == len(short_of)
