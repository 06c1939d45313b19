"""Articles and a race for the dedup tests, shared by the embedded-index and the Redis tests."""

from __future__ import annotations

import functools
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

from pipeline.dedup import sign
from pipeline.dedup.decide import DedupConfig, decide
from pipeline.enrich import content_fingerprint
from schemas import EnrichedArticle, SourceKind, SourceRef

# Real texts copied into tests/ (see its README), so the tests need nothing outside the repo.
SAMPLE_TEXTS = Path(__file__).resolve().parent / "data" / "dedup" / "ground-truth-sample.json"
# All 181 of them, for tests that compare a faster path with the reference on many real texts.
REAL_TEXTS = Path(__file__).resolve().parent / "data" / "dedup" / "ground-truth.json"

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STORY = " ".join(
    f"Officials in city number {n} said on Tuesday that the new bridge would open to traffic next spring "
    f"after years of delay and a budget that grew by {n} million."
    for n in range(12)
)
OTHER = " ".join(
    f"The football club announced that player {n} signed a contract extension until {2030 + n} after a season "
    "with many goals."
    for n in range(12)
)


def article(article_id: str, body: str, *, published: datetime = T0, fetched: datetime = T0) -> EnrichedArticle:
    return EnrichedArticle(
        article_id=article_id,
        title=f"Title of {article_id}",
        body=body,
        published_at=published,
        fetched_at=fetched,
        source=SourceRef(kind=SourceKind.SEED, name="test"),
        enriched_at=fetched,
        content_fingerprint=content_fingerprint(body),
    )


def edited(body: str) -> str:
    """A wire copy: another dateline, a word changed, a copyright line."""
    return "WIRE (Reuters) - " + body.replace("Tuesday", "Wednesday", 2) + " Copyright 2026 Some Outlet."


def random_body(seed: int) -> str:
    words = STORY.split() + OTHER.split()
    return " ".join(random.Random(seed).choices(words, k=300))


def race_on_pairs(config: DedupConfig, sides: tuple[int, ...], pairs: int) -> tuple[set[str], set[str]]:
    """Threads, one per entry of ``sides``, each deciding its side of every (earlier, later) pair at once.

    Returns the earlier ids and the ids left kept (kept and never demoted).
    """
    made = [
        (article(f"seed-a{n}", random_body(n)), article(f"seed-b{n}", random_body(n) + " (edited) Copyright."))
        for n in range(pairs)
    ]
    kept: set[str] = set()
    demoted: set[str] = set()
    lock = threading.Lock()

    def worker(side: int) -> None:
        index = config.index.open()
        for pair in made:
            signed = sign(pair[side], config)
            decision = index.transact(functools.partial(decide, signed=signed, config=config, now=T0))
            with lock:
                kept.update([pair[side].article_id] if decision.original else [])
                demoted.update(d.article_id for d in decision.demoted)
        index.close()

    threads = [threading.Thread(target=worker, args=(side,)) for side in sides]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {a.article_id for a, _ in made}, kept - demoted
