"""What the dedup stage decides about one article, given what the dedup index remembers.

Pure decision logic over an ``IndexView``: no Beam, no I/O of its own, no clock reads
other than the ``now`` it is given, so a backend may re-run it after a conflicting write
and it will decide the same way on the same reads. The layers, in order:

1. identity: the same article id again. The very same record (equal revision token, a
   re-run after a crash) gets back the decision stored for it; the same body is a
   re-announcement (a duplicate); a changed body is a new version, not a duplicate.
2. exact content: the same body fingerprint under another id.
3. near-duplicate: estimated Jaccard of word-shingle MinHash signatures at or above the
   threshold, candidates found through LSH band keys.
4. same story: a looser similarity over content words gives each article a story id.

Among copies the original is the earliest by (publication time, article id). When an
earlier copy arrives after a later one was already published, the earlier one is kept
and the later one is *demoted* (a notice with ``was_original``): both are never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.dedup_index import Entry, IndexLocation, IndexView
from pipeline.dedup_signature import LshScheme, Signature, decode_signature, encode_signature, similarity
from schemas import DuplicateLayer, EnrichedArticle

_MAX_BAND_OWNERS = 8  # a band shared by more originals than this is boilerplate, not a story
_MAX_FINGERPRINTS = 32


@dataclass(frozen=True)
class DedupConfig:
    """Everything the dedup stage needs, as plain picklable values."""

    index: IndexLocation
    near_threshold: float = 0.8
    story_threshold: float = 0.3
    shingle_words: int = 3
    permutations: int = 128
    near_duplicates: bool = True
    stories: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.story_threshold <= self.near_threshold <= 1.0:
            raise ValueError(
                f"need 0 < story_threshold ({self.story_threshold}) <= near_threshold ({self.near_threshold}) <= 1"
            )
        if self.shingle_words < 1 or self.permutations < 16:
            raise ValueError("shingle_words must be >= 1 and permutations >= 16")

    @property
    def near_scheme(self) -> LshScheme:
        return LshScheme.for_threshold("near", self.near_threshold, self.permutations)

    @property
    def story_scheme(self) -> LshScheme:
        return LshScheme.for_threshold("story", self.story_threshold, self.permutations)


def precedence(article: EnrichedArticle) -> str:
    """Sorts earliest first: publication time (unknown last), then article id."""
    published = article.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if article.published_at else "~"
    return f"{published}|{article.article_id}"


def new_story_id(article_id: str) -> str:
    return "story-" + hashlib.sha256(article_id.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Signed:
    """An article with everything the layers compare, computed once by a DoFn."""

    article: EnrichedArticle
    revision: str
    precedence: str
    signature: Signature
    near_bands: Sequence[str]
    story_signature: Signature
    story_bands: Sequence[str]


@dataclass(frozen=True)
class Demotion:
    article_id: str
    layer: str
    similarity: float
    source: dict[str, Any]
    canonical_url: str | None


@dataclass(frozen=True)
class Decision:
    original: bool
    layer: str | None = None
    duplicate_of: str | None = None
    similarity: float = 1.0
    version: int = 1
    story_id: str | None = None
    demoted: list[Demotion] = field(default_factory=list)

    def to_entry(self) -> Entry:
        return asdict(self)

    @classmethod
    def from_entry(cls, entry: Entry) -> Decision:
        return cls(**{**entry, "demoted": [Demotion(**d) for d in entry.get("demoted", [])]})


def _owners(view: IndexView, bands: Sequence[str], exclude: str) -> dict[str, str]:
    """article id -> precedence of every original recorded under any of ``bands``."""
    owners: dict[str, str] = {}
    for entry in view.get_many(bands).values():
        for prec, article_id in entry["owners"]:
            if article_id != exclude:
                owners[article_id] = prec
    return owners


def _add_owner(view: IndexView, bands: Sequence[str], prec: str, article_id: str) -> None:
    current = view.get_many(bands)
    for band in bands:
        owners = [o for o in current.get(band, {"owners": []})["owners"] if o[1] != article_id]
        owners = sorted([*owners, [prec, article_id]])[:_MAX_BAND_OWNERS]
        view.put(band, {"owners": owners})


def _similar(
    view: IndexView, owners: dict[str, str], signature: Signature, threshold: float, key: str
) -> list[tuple[str, str, float, Entry]]:
    """(precedence, article id, similarity, signature entry) of live, undemoted originals at or above threshold."""
    entries = view.get_many(f"sig:{a}" for a in owners)
    found = []
    for article_id, prec in owners.items():
        entry = entries.get(f"sig:{article_id}")
        if entry is None or entry.get("demoted_by"):
            continue
        score = similarity(signature, decode_signature(entry[key]))
        if score >= threshold:
            found.append((prec, article_id, score, entry))
    return sorted(found, key=lambda f: (f[0], f[1]))


def decide(view: IndexView, signed: Signed, config: DedupConfig, now: datetime) -> Decision:
    article = signed.article
    article_id, fingerprint = article.article_id, article.content_fingerprint
    identity_key = f"id:{article_id}"
    known = view.get_many([identity_key]).get(identity_key)
    if known is not None:
        if known["revision"] == signed.revision:
            return Decision.from_entry(known["decision"])  # our own claim, re-read after a crash
        if fingerprint in known["fingerprints"]:
            return Decision(False, DuplicateLayer.ARTICLE_ID, article_id, 1.0, known["version"], known["story"])
        if article.fetched_at.timestamp() <= known["fetched_at"]:
            return Decision(False, DuplicateLayer.SUPERSEDED_VERSION, article_id, 0.0, known["version"], known["story"])
    # ``article.version`` > 1 only when one batch held several bodies of this article id.
    version = (known["version"] if known else 0) + (article.version or 1)
    story_id: str | None = known["story"] if known else None
    # Later originals this article precedes; demoted only if it turns out an original itself.
    later: list[tuple[str, str, float]] = []
    decision: Decision | None = None

    exact_key = f"fp:{fingerprint}"
    exact = view.get_many([exact_key]).get(exact_key)
    if exact is not None and exact["article_id"] != article_id and not _is_demoted(view, exact["article_id"]):
        if exact["precedence"] < signed.precedence:
            decision = Decision(False, DuplicateLayer.EXACT_CONTENT, exact["article_id"], 1.0, version, exact["story"])
        else:
            later.append((exact["article_id"], DuplicateLayer.EXACT_CONTENT, 1.0))

    if decision is None and config.near_duplicates:
        owners = _owners(view, signed.near_bands, article_id)
        for prec, other, score, entry in _similar(view, owners, signed.signature, config.near_threshold, "signature"):
            if prec < signed.precedence:
                decision = Decision(False, DuplicateLayer.NEAR_DUPLICATE, other, score, version, entry["story"])
                break
            if all(other != seen for seen, _, _ in later):
                later.append((other, DuplicateLayer.NEAR_DUPLICATE, score))

    if story_id is None and decision is not None:
        story_id = decision.story_id
    if story_id is None and config.stories:
        owners = _owners(view, signed.story_bands, article_id)
        similar = _similar(view, owners, signed.story_signature, config.story_threshold, "story_signature")
        story_id = similar[0][3]["story"] if similar else None
    story_id = story_id or new_story_id(article_id)
    if decision is None:
        demoted = [_demote(view, other, article_id, layer, score) for other, layer, score in later]
        decision = Decision(True, None, None, 1.0, version, story_id, demoted)
    else:
        decision = Decision(False, decision.layer, decision.duplicate_of, decision.similarity, version, story_id)

    fingerprints = ([*known["fingerprints"], fingerprint] if known else [fingerprint])[-_MAX_FINGERPRINTS:]
    view.put(
        identity_key,
        {
            "revision": signed.revision,
            "fingerprints": fingerprints,
            "version": version,
            "fetched_at": article.fetched_at.timestamp(),
            "story": story_id,
            "decision": decision.to_entry(),
            "source": article.source.model_dump(mode="json"),
            "canonical_url": article.canonical_url,
            "decided_at": now.timestamp(),
        },
    )
    if decision.original:
        view.put(exact_key, {"article_id": article_id, "precedence": signed.precedence, "story": story_id})
        view.put(
            f"sig:{article_id}",
            {
                "signature": encode_signature(signed.signature),
                "story_signature": encode_signature(signed.story_signature),
                "precedence": signed.precedence,
                "story": story_id,
            },
        )
        if config.near_duplicates:
            _add_owner(view, signed.near_bands, signed.precedence, article_id)
        if config.stories:
            _add_owner(view, signed.story_bands, signed.precedence, article_id)
    return decision


def _is_demoted(view: IndexView, article_id: str) -> bool:
    entry = view.get_many([f"sig:{article_id}"]).get(f"sig:{article_id}")
    return bool(entry and entry.get("demoted_by"))


def _demote(view: IndexView, article_id: str, by: str, layer: str, score: float) -> Demotion:
    signature_key, identity_key = f"sig:{article_id}", f"id:{article_id}"
    entries = view.get_many([signature_key, identity_key])
    if signature_key in entries:
        view.put(signature_key, {**entries[signature_key], "demoted_by": by})
    identity = entries.get(identity_key, {})
    return Demotion(article_id, layer, score, identity.get("source", {}), identity.get("canonical_url"))
