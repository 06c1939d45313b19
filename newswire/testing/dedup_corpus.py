"""A dedup benchmark corpus with known ground truth, built from real article texts.

Each real body from the Zyte extraction benchmark (``../shared/data/extraction-benchmark``)
becomes one story: the article itself, wire copies of it as other outlets would run them
(their own boilerplate, a rewritten headline, a paragraph dropped or swapped, small edits,
a trimmed ending), exact copies under other URLs, re-announcements of the same URL with
tracking parameters, an updated version, and a follow-up that reuses some of its text but
is a different article (same story, not a duplicate). The other real articles, some on
the same topic, are the distractors that must not merge. Copies are published around the
original's time, sometimes before it, so the earliest copy is not always the base text.

The truth is what the generator did, never a similarity measured afterwards; this module
must never choose or drop texts by how any deduplicator scores on them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.enrich import content_fingerprint
from schemas import EnrichedArticle, SourceKind, SourceRef, article_id_for_url

_GROUND_TRUTH_IN_SHARED = Path("shared") / "data" / "extraction-benchmark" / "ground-truth.json"
# shared/ sits beside the checkout: one level up for the main checkout, two for a worktree.
GROUND_TRUTH = next(
    (
        folder / _GROUND_TRUTH_IN_SHARED
        for folder in Path(__file__).resolve().parents[2:]
        if (folder / _GROUND_TRUTH_IN_SHARED).exists()
    ),
    Path(__file__).resolve().parents[3] / _GROUND_TRUTH_IN_SHARED,
)
_EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
_OUTLETS = [
    (
        "dailyherald.example",
        "Sign up for our morning newsletter to get the day's top stories. Copyright 2026 Daily Herald Media. "
        "All rights reserved.",
    ),
    ("metroexpress.example", "This article was produced with reporting from wire services. Follow us on social media."),
    (
        "valleytimes.example",
        "Have a news tip? Email our newsroom. Valley Times is a member of the regional press association.",
    ),
    ("coastalpost.example", "Read more stories like this one in our weekly digest, delivered every Sunday."),
    ("northstar.example", "Copyright 2026 Northstar News. This material may not be published or redistributed."),
]
_HEADLINE_PREFIXES = ["UPDATE:", "Report:", "Breaking:", "Analysis:", "WATCH:"]


@dataclass(frozen=True)
class Truth:
    """What the generator made an article as: its story, its copy kind, and what it copies."""

    story: str  # every article of one base text, follow-ups included
    cluster: str  # the articles that are copies of one another (follow-ups get their own)
    kind: str  # original | near_duplicate | exact_content | article_id | update | follow_up


@dataclass(frozen=True)
class Corpus:
    articles: list[EnrichedArticle]
    truth: dict[tuple[str, str], Truth]  # (article id, revision token) -> truth


def real_texts(minimum_words: int = 150, ground_truth: Path = GROUND_TRUTH) -> list[tuple[str, str]]:
    """(url, body) of the benchmark's English-like articles long enough to copy and edit."""
    data = json.loads(ground_truth.read_text(encoding="utf-8"))
    texts = []
    for key in sorted(data):
        body, url = data[key]["articleBody"], data[key]["url"]
        words = re.findall(r"\w+", body)
        latin = sum(w.isascii() for w in words) / max(len(words), 1)
        if len(words) >= minimum_words and latin > 0.9 and len(_paragraphs(body)) >= 3:
            texts.append((url, body))
    return texts


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n|\n", body) if p.strip()]


def _edit_words(paragraphs: list[str], rng: random.Random, share: float) -> list[str]:
    edited = []
    for paragraph in paragraphs:
        words = paragraph.split(" ")
        for _ in range(max(0, round(len(words) * share * rng.random() * 2))):
            position = rng.randrange(len(words))
            match rng.randrange(3):
                case 0:
                    words[position] = words[position].upper() if rng.random() < 0.5 else "reportedly"
                case 1:
                    if len(words) > 3:
                        del words[position]
                case _:
                    words.insert(position, rng.choice(["also", "now", "said", "officially"]))
        edited.append(" ".join(words))
    return edited


def _wire_copy(paragraphs: list[str], rng: random.Random, outlet: int) -> list[str]:
    copy = list(paragraphs)
    total = sum(len(p.split()) for p in copy)
    if len(copy) >= 6 and rng.random() < 0.4:  # drop one short paragraph
        small = [i for i, p in enumerate(copy) if len(p.split()) < 0.08 * total]
        if small:
            del copy[rng.choice(small)]
    if len(copy) >= 4 and rng.random() < 0.4:  # swap two neighbouring paragraphs
        i = rng.randrange(len(copy) - 1)
        copy[i], copy[i + 1] = copy[i + 1], copy[i]
    if rng.random() < 0.6:
        copy = _edit_words(copy, rng, 0.01)
    if len(copy) >= 6 and rng.random() < 0.3:  # trim the ending, at most ~6% of the words
        last = len(copy[-1].split())
        if last < 0.06 * total:
            copy = copy[:-1]
    if rng.random() < 0.5:
        copy[0] = f"{_OUTLETS[outlet][0].split('.')[0].upper()} (Wire) - {copy[0]}"
    copy.append(_OUTLETS[outlet][1])
    return copy


def page_article(url: str, title: str, body: list[str], published: datetime, fetched: datetime) -> EnrichedArticle:
    """An enriched article fetched from ``url``, its paragraphs joined as extraction joins them."""
    text = "\n\n".join(body)
    return EnrichedArticle(
        article_id=article_id_for_url(url),
        canonical_url=url,
        title=title,
        body=text,
        published_at=published,
        fetched_at=fetched,
        source=SourceRef(kind=SourceKind.PAGE, name=url.split("/")[2], url=url),
        enriched_at=fetched,
        content_fingerprint=content_fingerprint(text),
    )


def build_corpus(*, stories: int | None = None, seed: int = 5, ground_truth: Path = GROUND_TRUTH) -> Corpus:
    rng = random.Random(seed)
    texts = real_texts(ground_truth=ground_truth)
    if stories is not None:
        texts = texts[:stories]
    articles: list[EnrichedArticle] = []
    truth: dict[tuple[str, str], Truth] = {}

    def add(url: str, title: str, body: list[str], published: datetime, fetched: datetime, t: Truth) -> None:
        article = page_article(url, title, body, published, fetched)
        from pipeline.dedup import revision_token  # the bench measures the pipeline's own identity

        articles.append(article)
        truth[(article.article_id, revision_token(article))] = t

    for number, (url, body) in enumerate(texts):
        story = f"story{number}"
        paragraphs = _paragraphs(body)
        title = " ".join(paragraphs[0].split()[:10])
        published = _EPOCH + timedelta(hours=number, minutes=rng.randrange(60))
        add(url, title, paragraphs, published, published + timedelta(minutes=5), Truth(story, story, "original"))
        for copy_number in range(rng.randrange(1, 5)):
            outlet = rng.randrange(len(_OUTLETS))
            copy_url = f"https://www.{_OUTLETS[outlet][0]}/news/{number}-{copy_number}"
            when = published + timedelta(minutes=rng.randrange(-30, 240))
            headline = f"{rng.choice(_HEADLINE_PREFIXES)} {title}" if rng.random() < 0.7 else title
            add(
                copy_url,
                headline,
                _wire_copy(paragraphs, rng, outlet),
                when,
                when + timedelta(minutes=3),
                Truth(story, story, "near_duplicate"),
            )
        if rng.random() < 0.3:  # the same text syndicated verbatim under another URL
            when = published + timedelta(minutes=rng.randrange(1, 120))
            add(
                f"https://syndication.example/{number}",
                title,
                paragraphs,
                when,
                when,
                Truth(story, story, "exact_content"),
            )
        if rng.random() < 0.3:  # a feed re-announcing the same URL with tracking parameters
            add(
                f"{url}{'&' if '?' in url else '?'}utm_source=rss&utm_medium=feed",
                title,
                paragraphs,
                published,
                published + timedelta(hours=6),
                Truth(story, story, "article_id"),
            )
        if rng.random() < 0.2:  # the outlet updates its own article: same URL, changed body
            update = [*paragraphs, "Update: this story has been updated with a statement from officials."]
            add(
                url,
                title,
                update,
                published,
                published + timedelta(hours=12),
                Truth(story, story, "update"),
            )
        if rng.random() < 0.3:  # a follow-up: reuses the lede and some background, otherwise new
            other = _paragraphs(texts[(number + 1 + rng.randrange(len(texts) - 1)) % len(texts)][1])
            follow = [paragraphs[0], *rng.sample(paragraphs[1:], k=min(2, len(paragraphs) - 1)), *other[:4]]
            when = published + timedelta(hours=rng.randrange(2, 30))
            add(
                f"https://www.followup.example/{number}",
                f"What comes next: {title}",
                follow,
                when,
                when,
                Truth(story, f"follow{number}", "follow_up"),
            )
    return Corpus(articles, truth)
