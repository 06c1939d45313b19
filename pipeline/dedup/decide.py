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

An article is a duplicate when an earlier copy of it exists (earliest by publication time,
then article id), whether or not that copy is kept itself; so the originals do not depend
on arrival order. When an earlier copy arrives after a later one was already published,
the later one is *demoted* (a notice with ``was_original``); the earliest copy of any group
is always kept, so never are all copies dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from pipeline.dedup.entries import (
    BAND_LAYOUT_KEY,
    FINGERPRINT,
    article_of,
    band_precedences,
    fingerprint_key,
    identity_key,
    is_band,
    legacy_bands_live,
    signature_key,
)
from pipeline.dedup.index import Entry, IndexLocation, IndexView
from pipeline.dedup.signature import LshScheme, Signature, decode_signature, encode_signature
from schemas import DuplicateLayer, EnrichedArticle

_MAX_STORY_OWNERS = 8  # a story band shared by more originals than this is boilerplate, not a story
_MAX_NEAR_OWNERS = 32  # the earliest copies under one near band; any later copy matches one of them
_MAX_FINGERPRINTS = 32
FINGERPRINT_PREFIX = f"{FINGERPRINT}:"


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
    # The most articles decided in one index transaction (settings.dedup_decide_batch says why).
    decide_batch: int = 2_000

    def __post_init__(self) -> None:
        if self.decide_batch < 1:
            raise ValueError(f"decide_batch must be at least 1, not {self.decide_batch}")
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
        # "lede": story signatures cover headline and lede since that version; band keys of
        # whole-body story signatures ("story...") no longer match and expire with the horizon.
        return LshScheme.for_threshold("lede", self.story_threshold, self.permutations)


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
    # (precedence, article id, similarity) of the earliest near copy met within this batch.
    batch_earlier: tuple[str, str, float] | None = None
    # An older body of an article whose newer body is in the same batch: compared and
    # recorded (later articles may copy it), never published.
    superseded: bool = False


class CopyOf(NamedTuple):
    """What a recorded article that is not kept copies (stored as a JSON list)."""

    article_id: str
    layer: str
    similarity: float


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
        # By hand rather than dataclasses.asdict: this runs for every article decided, and
        # asdict deep-copies recursively.
        return {
            "original": self.original,
            "layer": self.layer,
            "duplicate_of": self.duplicate_of,
            "similarity": self.similarity,
            "version": self.version,
            "story_id": self.story_id,
            "demoted": [
                {
                    "article_id": d.article_id,
                    "layer": d.layer,
                    "similarity": d.similarity,
                    "source": d.source,
                    "canonical_url": d.canonical_url,
                }
                for d in self.demoted
            ],
        }

    @classmethod
    def from_entry(cls, entry: Entry) -> Decision:
        return cls(**{**entry, "demoted": [Demotion(**d) for d in entry.get("demoted", [])]})


def _owners(view: IndexView, bands: Sequence[str], exclude: str, cap: int) -> dict[str, str]:
    """article id -> precedence of the ``cap`` earliest articles recorded under each of ``bands``.

    Bounded by precedence, so a hot band (boilerplate every article shares) costs at most
    ``cap`` comparisons, never thousands; the earliest owners are the ones an earlier copy
    is found among, so the bound changes no original. Bands are written capped the same
    way; the bound here also covers entries written before that.
    """
    owners: dict[str, str] = {}
    for entry in view.get_many(bands).values():
        for prec in sorted(band_precedences(entry))[:cap]:
            article_id = article_of(prec)
            if article_id != exclude:
                owners[article_id] = prec
    return owners


def _bands_looked_up(
    view: IndexView, signed: Signed, config: DedupConfig, now: datetime
) -> tuple[list[str], list[str]]:
    """The near and story band keys whose owners are candidates: the article's own and, while the
    index may still hold keys of the earlier layout, those too. Only the article's own are written."""
    near, story = list(signed.near_bands), list(signed.story_bands)
    if legacy_bands_live(view.get_many([BAND_LAYOUT_KEY]).get(BAND_LAYOUT_KEY), now.timestamp()):
        if near:
            near += config.near_scheme.legacy_band_keys(signed.signature)
        if story:
            story += config.story_scheme.legacy_band_keys(signed.story_signature)
    return near, story


def _add_owner(view: IndexView, bands: Sequence[str], prec: str, article_id: str, cap: int) -> None:
    """Lists ``prec`` under each band, keeping the ``cap`` earliest owners that are still remembered.

    Owners whose signature has expired are dropped: in a stream whose publication times
    keep rising, a full list of stale owners would otherwise shut newer articles out.
    """
    current = view.get_many(bands)
    listed = {article_of(p) for entry in current.values() for p in band_precedences(entry)}
    signatures = view.get_many([signature_key(a) for a in listed]) if listed else {}
    remembered = {a for a in listed if signature_key(a) in signatures}
    alone: Entry = {"p": [prec]}  # one object for every band nobody else is under yet (most of them)
    for band in bands:
        entry = current.get(band)
        if entry is None:
            view.put(band, alone)  # entries are never changed in place, only replaced
            continue
        others = [p for p in band_precedences(entry) if (owner := article_of(p)) != article_id and owner in remembered]
        view.put(band, {"p": sorted([*others, prec])[:cap]})


def _similar(
    view: IndexView,
    owners: dict[str, str],
    signature: Signature,
    threshold: float,
    decoded: dict[str, Signature],
    *,
    story: bool = False,
) -> list[tuple[str, str, float, Entry]]:
    """(precedence, article id, similarity, signature entry) of recorded articles at or above threshold.

    Near similarity is the best over every body recorded for an article (its versions);
    story similarity uses the story terms of its latest body, and only kept articles have
    one (a story is joined through an original, and a duplicate never becomes one again).
    Every candidate signature is compared in one array operation; ``decoded`` holds the
    signatures this transaction has already decoded, by their stored text.
    """
    entries = view.get_many(signature_key(a) for a in owners)
    rows: list[Signature] = []
    holders: list[str] = []
    for article_id in owners:
        entry = entries.get(signature_key(article_id))
        if entry is None or (story and not _kept(entry)):
            continue
        for text in [entry["story_signature"]] if story else entry["signatures"]:
            found = decoded.get(text)
            if found is None:
                found = decoded[text] = decode_signature(text)
            rows.append(found)
            holders.append(article_id)
    if not rows:
        return []
    # The same value ``similarity`` gives: equal positions over the signature's length.
    agreeing = np.count_nonzero(np.stack(rows) == signature, axis=1).tolist()
    best: dict[str, float] = {}
    for article_id, count in zip(holders, agreeing, strict=True):
        score = count / len(signature)
        if score > best.get(article_id, -1.0):
            best[article_id] = score
    similar = [
        (owners[article_id], article_id, score, entries[signature_key(article_id)])
        for article_id, score in best.items()
        if score >= threshold
    ]
    return sorted(similar, key=lambda f: (f[0], f[1]))


def _kept(entry: Entry) -> bool:
    """Whether a recorded article is still published as an original."""
    return entry.get("copy_of") is None


@dataclass(frozen=True)
class _Match:
    precedence: str
    article_id: str
    layer: str
    similarity: float
    story: str | None


def _copies(
    view: IndexView,
    signed: Signed,
    exact: Entry | None,
    near_bands: Sequence[str],
    config: DedupConfig,
    decoded: dict[str, Signature],
) -> tuple[list[_Match], list[tuple[str, str, float]]]:
    """The recorded earlier copies of this body, and the kept later articles that copy it."""
    article_id, mine = signed.article.article_id, signed.precedence
    earlier: list[_Match] = []
    later: list[tuple[str, str, float]] = []
    if exact is not None and exact["article_id"] != article_id:
        holder_id = exact["article_id"]
        if exact["precedence"] < mine:
            earlier.append(_Match(exact["precedence"], holder_id, DuplicateLayer.EXACT_CONTENT, 1.0, exact["story"]))
        else:
            holder = view.get_many([signature_key(holder_id)]).get(signature_key(holder_id))
            if holder is not None and _kept(holder):
                later.append((holder_id, DuplicateLayer.EXACT_CONTENT, 1.0))
    if config.near_duplicates:
        owners = _owners(view, near_bands, article_id, _MAX_NEAR_OWNERS)
        for prec, other, score, entry in _similar(view, owners, signed.signature, config.near_threshold, decoded):
            if prec < mine:
                earlier.append(_Match(prec, other, DuplicateLayer.NEAR_DUPLICATE, score, entry["story"]))
            elif _kept(entry) and all(other != seen for seen, _, _ in later):
                later.append((other, DuplicateLayer.NEAR_DUPLICATE, score))
        if signed.batch_earlier is not None:
            prec, other, score = signed.batch_earlier
            met = view.get_many([signature_key(other)]).get(signature_key(other))
            earlier.append(_Match(prec, other, DuplicateLayer.NEAR_DUPLICATE, score, met["story"] if met else None))
    return earlier, later


def decide(
    view: IndexView,
    signed: Signed,
    config: DedupConfig,
    now: datetime,
    *,
    decoded: dict[str, Signature] | None = None,
    bands: tuple[list[str], list[str]] | None = None,
) -> Decision:
    """An article is a duplicate exactly when an earlier article (by precedence) copies one of its bodies.

    Whether that earlier copy is itself kept does not matter. This makes the set of
    originals a function of the articles alone, not of their arrival order: an arrival can
    only turn kept articles into duplicates (it demotes the later copies it precedes, and
    its own article id if an older body of it was kept), never the reverse, so every order
    ends in the same state. The earliest article of any group of copies is always kept,
    so never are all copies dropped. ``bands`` are the near and story keys ``decide_all``
    has already listed for the article (``_bands_looked_up``); listed here when not given.
    """
    article = signed.article
    article_id, fingerprint, mine = article.article_id, article.content_fingerprint, signed.precedence
    id_key, sig_key, exact_key = identity_key(article_id), signature_key(article_id), fingerprint_key(fingerprint)
    current = view.get_many([id_key, sig_key, exact_key])
    known, recorded, exact = current.get(id_key), current.get(sig_key), current.get(exact_key)
    if known is not None:
        if known["revision"] == signed.revision:
            return _replayed(Decision.from_entry(known["decision"]), recorded)
        if fingerprint in known["fingerprints"]:
            return Decision(False, DuplicateLayer.ARTICLE_ID, article_id, 1.0, known["version"], known["story"])
    # An older body seen after a newer one: not published, but still compared and recorded.
    superseded = signed.superseded or (known is not None and article.fetched_at.timestamp() <= known["fetched_at"])

    decoded = {} if decoded is None else decoded
    near_bands, story_bands = bands if bands is not None else _bands_looked_up(view, signed, config, now)
    earlier, later = _copies(view, signed, exact, near_bands, config, decoded)
    demoted = [_demote(view, other, article_id, layer, score) for other, layer, score in later]
    # The same body first, then the earliest near copy: duplicate_of names the closest earliest copy.
    first = min(
        earlier, key=lambda m: (m.layer != DuplicateLayer.EXACT_CONTENT, m.precedence, m.article_id), default=None
    )
    copy_of = CopyOf(first.article_id, first.layer, first.similarity) if first else None
    if recorded is not None and not _kept(recorded):
        copy_of = copy_of or CopyOf(*recorded["copy_of"])  # once a duplicate, every body of it is one
    elif recorded is not None and copy_of is not None and known is not None:
        demoted.append(  # another body of this article was kept; this one shows it copies an earlier article
            Demotion(article_id, copy_of.layer, copy_of.similarity, known["source"], known["canonical_url"])
        )

    story_id: str | None = known["story"] if known else None
    if story_id is None and first is not None:
        story_id = first.story
    if story_id is None and config.stories:
        owners = _owners(view, story_bands, article_id, _MAX_STORY_OWNERS)
        candidates = _similar(view, owners, signed.story_signature, config.story_threshold, decoded, story=True)
        story_id = candidates[0][3]["story"] if candidates else None  # kept articles only (``_similar``)
    story_id = story_id or new_story_id(article_id)

    if superseded:
        version = known["version"] if known else 1
        decision = Decision(False, DuplicateLayer.SUPERSEDED_VERSION, article_id, 0.0, version, story_id, demoted)
        if known is not None:  # the newer body's decision stands; it writes the identity if not yet decided
            fingerprints = [*known["fingerprints"], fingerprint][-_MAX_FINGERPRINTS:]
            view.put(id_key, {**known, "fingerprints": fingerprints})
    else:
        # ``article.version`` > 1 only when one batch held several bodies of this article id.
        version = (known["version"] if known else 0) + (article.version or 1)
        if copy_of is None:
            decision = Decision(True, None, None, 1.0, version, story_id, demoted)
        else:
            decision = Decision(
                False, copy_of.layer, copy_of.article_id, copy_of.similarity, version, story_id, demoted
            )
        fingerprints = ([*known["fingerprints"], fingerprint] if known else [fingerprint])[-_MAX_FINGERPRINTS:]
        view.put(
            id_key,
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
    if exact is None or mine < exact["precedence"]:
        view.put(exact_key, {"article_id": article_id, "precedence": mine, "story": story_id})
    exact_copy = first is not None and first.layer == DuplicateLayer.EXACT_CONTENT
    if exact_copy and recorded is None:
        return decision  # the same body is recorded under its earlier holder: nothing new to compare with
    signatures = [] if recorded is None else recorded["signatures"]
    if not exact_copy:
        signatures = [*signatures, encode_signature(signed.signature)][-_MAX_FINGERPRINTS:]
    recorded_signature: Entry = {
        "signatures": signatures,
        "precedence": recorded["precedence"] if recorded is not None else mine,
        "story": story_id,
        "copy_of": copy_of,
    }
    if copy_of is None:  # only a kept article is a story candidate (see ``_similar``)
        # An older body keeps the story terms of the newer; ``recorded`` is kept, or copy_of would be set.
        recorded_signature["story_signature"] = (
            recorded["story_signature"]
            if superseded and recorded is not None
            else encode_signature(signed.story_signature)
        )
    view.put(sig_key, recorded_signature)
    if config.near_duplicates and not exact_copy:
        # Duplicates are recorded too: a later article that copies only them is still a copy.
        _add_owner(view, signed.near_bands, mine, article_id, _MAX_NEAR_OWNERS)
    if config.stories and copy_of is None and not superseded:
        _add_owner(view, signed.story_bands, mine, article_id, _MAX_STORY_OWNERS)
    return decision


def decide_all(view: IndexView, batch: Sequence[Signed], config: DedupConfig, now: datetime) -> list[Decision]:
    """``decide`` for each article of one index transaction, earliest first as given.

    Reads what the batch needs up front, in three round trips whatever the batch's size
    (the band layout marker, the articles' own keys and bands, then the signatures of the
    bands' owners), so the decisions themselves read from the transaction's view; each
    stored signature is decoded once per transaction, and each article's band keys are
    listed once. The decisions are those ``decide`` makes one by one: the view serves the
    same entries, and each decision's writes are seen by the next.
    """
    keys: list[str] = []
    looked_up: list[tuple[list[str], list[str]]] = []
    for signed in batch:
        article = signed.article
        keys += (
            identity_key(article.article_id),
            signature_key(article.article_id),
            fingerprint_key(article.content_fingerprint),
        )
        near_bands, story_bands = _bands_looked_up(view, signed, config, now)
        looked_up.append((near_bands, story_bands))
        if config.near_duplicates:
            keys += near_bands
        if config.stories:
            keys += story_bands
        if signed.batch_earlier is not None:
            keys.append(signature_key(signed.batch_earlier[1]))
    found = view.get_many(keys)
    owners: set[str] = set()
    for key, entry in found.items():
        if is_band(key):
            owners.update(article_of(p) for p in band_precedences(entry))
        elif key.startswith(FINGERPRINT_PREFIX):
            owners.add(entry["article_id"])
    view.get_many(signature_key(owner) for owner in owners)
    decoded: dict[str, Signature] = {}
    return [
        decide(view, signed, config, now, decoded=decoded, bands=bands)
        for signed, bands in zip(batch, looked_up, strict=True)
    ]


def _replayed(decision: Decision, signature: Entry | None) -> Decision:
    """The decision stored for this very record, unless a later arrival has demoted it since."""
    if not decision.original or signature is None or _kept(signature):
        return decision
    copy_of = CopyOf(*signature["copy_of"])
    return Decision(
        False,
        copy_of.layer,
        copy_of.article_id,
        copy_of.similarity,
        decision.version,
        decision.story_id,
        decision.demoted,
    )


def _demote(view: IndexView, article_id: str, by: str, layer: str, score: float) -> Demotion:
    sig_key, id_key = signature_key(article_id), identity_key(article_id)
    entries = view.get_many([sig_key, id_key])
    if sig_key in entries:
        # No longer a story candidate: its story signature is never read again.
        kept = {k: v for k, v in entries[sig_key].items() if k != "story_signature"}
        view.put(sig_key, {**kept, "copy_of": CopyOf(by, layer, score)})
    identity = entries.get(id_key, {})
    return Demotion(article_id, layer, score, identity.get("source", {}), identity.get("canonical_url"))
