"""What keeps dedup cheap without changing its answers: batch reads, vectorised signatures."""

from __future__ import annotations

import copy
import json
import random
from datetime import timedelta

import numpy as np

from newswire.testing.dedup_corpus import build_corpus
from pipeline.dedup import DedupConfig, IndexLocation, sign
from pipeline.dedup.decide import Decision, decide, decide_all
from pipeline.dedup.index import Entry, StagedView
from pipeline.dedup.signature import body_signature, encode_signature, jaccard, shingles, similarity, term_hashes
from schemas import EnrichedArticle
from tests.dedup_articles import OTHER, SAMPLE_TEXTS, STORY, T0, article, edited


class _Store:
    """A committed key -> entry map that counts how often a transaction goes to it."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.reads = 0

    def read(self, keys: list[str]) -> dict[str, Entry]:
        self.reads += 1
        return {k: copy.deepcopy(self.entries[k]) for k in keys if k in self.entries}

    def commit(self, view: StagedView) -> None:
        # As a backend stores them: JSON, so tuples come back as lists.
        self.entries.update(json.loads(json.dumps(view.staged)))


def _articles(prefix: str, count: int) -> list[EnrichedArticle]:
    out = []
    for number in range(count):
        body = f"{STORY} Story {prefix}{number} adds its own paragraph about item {number}." if number % 3 else OTHER
        body = edited(body) if number % 4 == 1 else body
        out.append(article(f"seed-{prefix}{number}", body, published=T0 + timedelta(minutes=number)))
    return out


def test_a_transaction_reads_the_index_in_a_fixed_number_of_round_trips_and_decides_the_same() -> None:
    config = DedupConfig(IndexLocation(sqlite_path=None, redis_url="redis://unused"))
    now = T0 + timedelta(days=1)
    first, second = _articles("a", 40), _articles("b", 40) + _articles("a", 10)
    batched, one_by_one = _Store(), _Store()
    for store in (batched, one_by_one):
        view = StagedView(store.read)
        decide_all(view, sorted((sign(a, config) for a in first), key=lambda s: s.precedence), config, now)
        store.commit(view)
    batched.reads = one_by_one.reads = 0

    signed = sorted((sign(a, config) for a in second), key=lambda s: s.precedence)
    view = StagedView(batched.read)
    decisions = decide_all(view, signed, config, now)
    reference_view = StagedView(one_by_one.read)
    reference = [decide(reference_view, s, config, now) for s in signed]

    assert decisions == reference
    assert view.staged == reference_view.staged
    assert batched.reads <= 3, f"{batched.reads} reads for one transaction of {len(signed)} articles"
    assert one_by_one.reads > 3 * len(signed) / 2  # what it was: several round trips per article


def test_body_signatures_are_pinned_and_estimate_the_shingle_jaccard() -> None:
    # Every worker and every restart must compute these very values, or copies never meet
    # in a band (a change needs a new SIGNATURE_VERSION).
    first, upper, _ = term_hashes(["bridge", "Bridge", "open"]).tolist()
    assert first == term_hashes(["bridge"]).tolist()[0] != upper  # a term hashes alike in any batch
    assert body_signature(STORY, 3, 128)[:4].tolist() == _PINNED_STORY_SIGNATURE
    copy_of_story = edited(STORY)
    exact = jaccard(shingles(STORY, 3), shingles(copy_of_story, 3))
    estimate = similarity(body_signature(STORY, 3, 128), body_signature(copy_of_story, 3, 128))
    assert abs(estimate - exact) < 0.1
    assert similarity(body_signature(STORY, 3, 128), body_signature(OTHER, 3, 128)) < 0.1
    empty = body_signature("...", 3, 128)
    assert empty.dtype == np.uint32 and len(empty) == 128


_PINNED_STORY_SIGNATURE = [43666625, 74174984, 108840821, 38633251]


def test_a_hot_band_yields_only_its_earliest_owners_as_candidates() -> None:
    from pipeline.dedup.decide import _MAX_NEAR_OWNERS, _owners

    store = _Store()
    # Written before owners were capped: a thousand articles under one boilerplate band.
    precedences = [f"2026-03-01T00:{n // 60:02d}:{n % 60:02d}.000000|seed-{n:04d}" for n in range(1000)]
    store.entries["near2:12x10:0:hot"] = {"owners": [[p, p.split("|")[1]] for p in reversed(precedences)]}
    view = StagedView(store.read)
    owners = _owners(view, ["near2:12x10:0:hot"], "seed-0000", _MAX_NEAR_OWNERS)
    assert len(owners) == _MAX_NEAR_OWNERS - 1  # the article itself is not its own candidate
    assert set(owners) == {f"seed-{n:04d}" for n in range(1, _MAX_NEAR_OWNERS)}


def test_only_kept_articles_keep_a_story_signature_and_decide_as_with_every_one_kept() -> None:
    # Real texts and their wire copies, shuffled so that earlier copies arrive late and demote.
    config = DedupConfig(IndexLocation(sqlite_path=None, redis_url="redis://unused"))
    articles = list(build_corpus(stories=30, ground_truth=SAMPLE_TEXTS).articles)
    random.Random(11).shuffle(articles)
    now = T0 + timedelta(days=1)
    lean, full = _Store(), _Store()  # full: every signature entry holds one, as before this layout
    story_text: dict[str, str] = {}
    decided: dict[str, list[Decision]] = {"lean": [], "full": []}
    for start in range(0, len(articles), 20):
        signed = sorted((sign(a, config) for a in articles[start : start + 20]), key=lambda s: s.precedence)
        story_text.update((s.article.article_id, encode_signature(s.story_signature)) for s in signed)
        for name, store in (("lean", lean), ("full", full)):
            view = StagedView(store.read)
            decided[name] += decide_all(view, signed, config, now)
            if store is full:
                for key, entry in view.staged.items():
                    if key.startswith("sig:") and "story_signature" not in entry:
                        entry["story_signature"] = story_text[key[len("sig:") :]]
            store.commit(view)

    assert decided["lean"] == decided["full"]
    recorded = {k: e for k, e in lean.entries.items() if k.startswith("sig:")}
    duplicates = [e for e in recorded.values() if e["copy_of"] is not None]
    assert len(duplicates) > 20 and any(d.demoted for d in decided["lean"]), "copies recorded, and some demoted"
    assert all("story_signature" not in e for e in duplicates)
    assert all("story_signature" in e for e in recorded.values() if e["copy_of"] is None)
    assert len({d.story_id for d in decided["lean"]}) < len(articles) / 2, "stories are joined, not all new"
