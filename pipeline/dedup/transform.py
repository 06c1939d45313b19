"""Deduplicate stage: keep the first copy of each article, report the others.

Layers: the same article id (a re-announced or replayed article, or a new version of
it), the same normalised body under another id (an exact copy), a near-identical body
(MinHash over word shingles, candidates met through LSH band keys), and a looser
same-story grouping that gives every article a ``story_id``. Within a batch, copies meet
through GroupByKey on the article id, the fingerprint and each band key, so the work
spreads over workers; across batches, restarts and workers the ``DedupIndex`` decides
(``pipeline.dedup.decide``), atomically. Originals continue with their version, story and
copy count; duplicates leave as ``DuplicateNotice``s. Nothing here keeps state in the
process between bundles: on any runner, every worker must reach the same decision.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import coders, metering
from pipeline.dead_letters import FAILURES, StageFailure
from pipeline.dedup.decide import Decision, DedupConfig, Signed, decide, decide_all, precedence
from pipeline.dedup.index import DedupIndex, IndexLocation, IndexView
from pipeline.dedup.signature import body_signature, similarity, story_signature
from pipeline.dependencies import DependencyUnavailable, environment_error
from schemas import DuplicateLayer, DuplicateNotice, EnrichedArticle, SourceRef
from schemas.timestamps import utc_now

ORIGINALS = "originals"
DUPLICATES = "duplicates"
OLDER = "older"
_EXPIRE_EVERY_S = 600.0


def revision_token(article: EnrichedArticle) -> str:
    """Identifies one publication of an article: equal only for the very same raw record."""
    material = f"{article.article_id}|{article.fetched_at.isoformat()}|{article.content_fingerprint}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def notice(
    article: EnrichedArticle,
    *,
    duplicate_of: str,
    layer: DuplicateLayer,
    similarity: float = 1.0,
    story_id: str | None = None,
) -> DuplicateNotice:
    return DuplicateNotice(
        article_id=article.article_id,
        duplicate_of=duplicate_of,
        layer=layer,
        similarity=similarity,
        canonical_url=article.canonical_url,
        source=article.source,
        detected_at=utc_now(),
        story_id=story_id,
    )


def sign(article: EnrichedArticle, config: DedupConfig) -> Signed:
    signature = body_signature(article.body, config.shingle_words, config.permutations)
    story = story_signature(article.body, article.title, config.permutations)
    return Signed(
        article=article,
        revision=revision_token(article),
        precedence=precedence(article),
        signature=signature,
        near_bands=config.near_scheme.band_keys(signature) if config.near_duplicates else [],
        story_signature=story,
        story_bands=config.story_scheme.band_keys(story) if config.stories else [],
    )


# Grouped values cross as the bytes CompactCoder makes of them, encoded and decoded once by the
# DoFns on either side: a runner may decode and re-encode what it groups with the PCollection's
# coder (the FnApiRunner does, for every grouped element), and bytes cost nothing to re-encode.
_ARTICLES = coders.CompactCoder(EnrichedArticle)
_SIGNED = coders.CompactCoder(Signed)


def _keep_latest_version(grouped: tuple[str, Iterable[bytes]]) -> Iterator[Any]:
    """One article id seen several times in a batch: the latest body goes on, first fetch of it.

    Older bodies leave on the ``older`` output: they are never published, but the index
    records them, as later articles may copy an older body.
    """
    article_id, encoded = grouped
    copies = [_ARTICLES.decode(e) for e in encoded]
    if len(copies) == 1:  # most ids come once: nothing to order, no tokens to compute
        yield copies[0]
        return
    ordered = sorted(copies, key=lambda a: (a.fetched_at, revision_token(a)))
    latest = ordered[-1].content_fingerprint
    kept = next(a for a in ordered if a.content_fingerprint == latest)
    bodies = len({a.content_fingerprint for a in ordered})
    # Several bodies in one batch are several versions; the index adds them to what it knew.
    yield kept.model_copy(update={"version": bodies}) if bodies > 1 else kept
    seen: set[str] = {latest}
    for other in ordered:
        if other is kept:
            continue
        if other.content_fingerprint in seen:  # a body seen before: a re-announcement
            notice_ = notice(other, duplicate_of=article_id, layer=DuplicateLayer.ARTICLE_ID)
            yield beam.pvalue.TaggedOutput(DUPLICATES, notice_)
        else:
            yield beam.pvalue.TaggedOutput(OLDER, other)
        seen.add(other.content_fingerprint)


def _keep_first_copy(grouped: tuple[str, Iterable[bytes]]) -> Iterator[Any]:
    _, encoded = grouped
    copies = [_ARTICLES.decode(e) for e in encoded]
    if len(copies) == 1:  # most bodies come once: nothing to order, no tokens to compute
        yield copies[0]
        return
    original, *others = sorted(copies, key=lambda a: (precedence(a), revision_token(a)))
    yield original.model_copy(update={"copies_seen": len(others)}) if others else original
    for other in others:
        yield beam.pvalue.TaggedOutput(
            DUPLICATES, notice(other, duplicate_of=original.article_id, layer=DuplicateLayer.EXACT_CONTENT)
        )


# Near-band members travel to the band join grouped: one element per article and band group,
# holding the article's bands of that group, instead of one per band (11.7 an article on the
# bench stream, two thirds of every element the pipeline moves). Most bands hold one article, so
# the elements were nearly all single-member groups whose shuffle cost more than the comparing.
# Four groups: an article's ~12 bands then span ~4 elements; the groups are also the join's
# parallelism on a distributed runner, ample for a stage that costs microseconds an article.
BAND_GROUPS = 4

# (precedence, article id, signature bytes, the article's near bands in this group)
_BandMember = tuple[str, str, bytes, tuple[str, ...]]


def band_group(band: str, groups: int) -> int:
    """Which group a band key's members meet in: the same on every worker (CRC-32 is unsalted)."""
    return zlib.crc32(band.encode("ascii")) % groups


def _band_members(signed: Signed, groups: int) -> Iterator[tuple[int, _BandMember]]:
    by_group: dict[int, list[str]] = {}
    for band in signed.near_bands:
        by_group.setdefault(band_group(band, groups), []).append(band)
    # The signature as bytes: an array pickles several times slower than its buffer.
    member = (signed.precedence, signed.article.article_id, signed.signature.tobytes())
    return ((group, (*member, tuple(bands))) for group, bands in by_group.items())


def _similar_pairs(grouped: tuple[int, Iterable[_BandMember]], threshold: float) -> Iterator[Any]:
    """(later id, (earlier precedence, earlier id, similarity)) for each similar pair sharing a band."""
    _, members = grouped
    by_band: dict[str, list[tuple[str, str, bytes]]] = {}
    for member_precedence, article_id, signature, bands in members:
        for band in bands:
            by_band.setdefault(band, []).append((member_precedence, article_id, signature))
    for band_members in by_band.values():
        if len(band_members) > 1:  # most bands hold one article: no pair to compare
            yield from _pairs_in_band(band_members, threshold)


def _pairs_in_band(members: list[tuple[str, str, bytes]], threshold: float) -> Iterator[Any]:
    ordered = sorted(members, key=lambda m: (m[0], m[1]))
    signatures = [np.frombuffer(m[2], dtype=np.uint32) for m in ordered]
    for position, (_, later_id, _) in enumerate(ordered):
        for (earlier_prec, earlier_id, _), earlier_signature in zip(
            ordered[:position], signatures[:position], strict=True
        ):
            if earlier_id == later_id:
                continue  # two bodies of one article: versions, not copies
            score = similarity(signatures[position], earlier_signature)
            if score >= threshold:
                yield later_id, (earlier_prec, earlier_id, score)


# One side of the join of batch members with their earlier near copies: (encoded Signed, None)
# or (None, (earlier precedence, earlier id, similarity)).
_NearSide = tuple[bytes | None, tuple[str, str, float] | None]


def _signed_side(signed: Signed) -> tuple[str, _NearSide]:
    return signed.article.article_id, (_SIGNED.encode(signed), None)


def _earlier_side(pair: tuple[str, tuple[str, str, float]]) -> tuple[str, _NearSide]:
    later_id, earlier = pair
    return later_id, (None, earlier)


def _mark_near_copies(joined: tuple[str, Iterable[_NearSide]]) -> Iterator[Signed]:
    """A batch member with an earlier near copy in the batch carries it to the index decision.

    The copy is still decided (and recorded) in the index: a later article that copies only
    this one must find it there.
    """
    _, sides = joined
    members: list[Signed] = []
    earlier: list[tuple[str, str, float]] = []
    for encoded, pair in sides:
        if encoded is not None:
            members.append(_SIGNED.decode(encoded))
        elif pair is not None:
            earlier.append(tuple(pair))  # type: ignore[arg-type]
    for signed in members:
        yield dataclasses.replace(signed, batch_earlier=min(earlier)) if earlier else signed


# Signed articles cross the Flatten before the decisions when near copies are off; notices
# and failures cross the Flattens of every layer's duplicates and every stage's failures.
coders.register([EnrichedArticle, DuplicateNotice, Signed, StageFailure])


class _KeyById(beam.DoFn):  # type: ignore[misc]
    """Keys each article by its id, counting what the stage takes in (``pipeline.metering``)."""

    def __init__(self) -> None:
        self._stage_in = metering.stage_counter("dedup", "in")

    def process(self, article: EnrichedArticle) -> Iterator[tuple[str, bytes]]:
        self._stage_in.inc()
        yield article.article_id, _ARTICLES.encode(article)


def index_down(error: Exception) -> None:
    """Raise ``error`` as an outage of the dedup index when the index, not an article, is at fault."""
    if isinstance(error, DependencyUnavailable):
        raise error
    # Redis' errors are not the builtin ones, but are named alike.
    names = {kind.__name__ for kind in type(error).__mro__}
    if environment_error(error) or names & {"ConnectionError", "TimeoutError", "BusyLoadingError"}:
        raise DependencyUnavailable("index", f"{type(error).__name__}: {error}") from error


class _DecideInIndex(beam.DoFn):  # type: ignore[misc]
    """Checks each batch survivor against what earlier batches, and other workers, kept.

    An article whose decision raises leaves on the ``failures`` output and the others are
    decided; an index that is down fails the bundle (``DependencyUnavailable``)."""

    def __init__(self, config: DedupConfig) -> None:
        self._config = config
        self._index: DedupIndex | None = None
        self._pending: list[tuple[Signed, Any, Any]] = []
        self._last_expiry: float | None = None
        # Only what the index decided; every duplicate notice, all layers, is counted as
        # duplicates.<layer> where they are written (pipeline.metering).
        self._duplicates = Metrics.counter("dedup", "index_duplicates")
        self._originals = Metrics.counter("dedup", "originals")
        self._demoted = Metrics.counter("dedup", "demoted")
        self._updates = Metrics.counter("dedup", "updates")
        self._stage_out = metering.stage_counter("dedup", "out")

    def setup(self) -> None:
        self._index = self._config.index.open()

    def teardown(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None

    def start_bundle(self) -> None:
        self._pending = []

    def process(
        self,
        signed: Signed,
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[Any]:
        # Decisions are made a batch at a time (one index transaction per batch), so each
        # element keeps its window and timestamp to be emitted correctly later.
        self._pending.append((signed, window, timestamp))
        if len(self._pending) >= self._config.decide_batch:
            yield from self._decide()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._decide()
        assert self._index is not None
        # Often enough that memory stays flat under a short horizon, seldom enough to stay cheap.
        every = min(_EXPIRE_EVERY_S, self._config.index.horizon_s / 4)
        if self._last_expiry is None or time.monotonic() - self._last_expiry > every:
            self._index.expire()
            self._last_expiry = time.monotonic()

    def _decide(self) -> Iterator[Any]:
        assert self._index is not None, "setup() opens the index"
        # Earliest first, so copies within the batch find their original already recorded.
        pending = sorted(self._pending, key=lambda p: (p[0].precedence, p[0].revision))
        self._pending = []
        if not pending:
            return
        now = utc_now()
        try:
            decisions = self._index.transact(
                lambda view: decide_all(view, [s for s, _, _ in pending], self._config, now)
            )
        except Exception as error:
            index_down(error)
            # One article broke the batch's transaction: decide each alone to find it.
            yield from self._decide_each(pending, now)
            return
        yield from self._emit(list(zip(pending, decisions, strict=True)))

    def _decide_each(self, pending: list[tuple[Signed, Any, Any]], now: datetime) -> Iterator[Any]:
        assert self._index is not None
        decided = []
        for held in pending:
            signed, window, timestamp = held

            def alone(view: IndexView, signed: Signed = signed) -> list[Decision]:
                return [decide(view, signed, self._config, now)]

            try:
                (decision,) = self._index.transact(alone)
            except Exception as error:
                index_down(error)
                failure = StageFailure.of(signed.article, stage="dedup", error_type="decide_error", error=error)
                yield beam.pvalue.TaggedOutput(FAILURES, WindowedValue(failure, timestamp, (window,)))
                continue
            decided.append((held, decision))
        yield from self._emit(decided)

    def _emit(self, decided: list[tuple[tuple[Signed, Any, Any], Decision]]) -> Iterator[Any]:
        copies = _copies_by_original([(s.article.article_id, d) for (s, _, _), d in decided])
        for (signed, window, timestamp), decision in decided:
            for output in self._outputs(signed.article, decision, copies.get(signed.article.article_id, 0)):
                if isinstance(output, DuplicateNotice):
                    yield beam.pvalue.TaggedOutput(DUPLICATES, WindowedValue(output, timestamp, (window,)))
                else:
                    yield WindowedValue(output, timestamp, (window,))

    def _outputs(
        self, article: EnrichedArticle, decision: Decision, copies: int
    ) -> Iterator[EnrichedArticle | DuplicateNotice]:
        if decision.original:
            self._originals.inc()
            self._stage_out.inc()
            if decision.version > 1:
                self._updates.inc()
            yield article.model_copy(
                update={
                    "version": decision.version,
                    "updated_at": article.fetched_at if decision.version > 1 else None,
                    "story_id": decision.story_id,
                    "copies_seen": (article.copies_seen or 0) + copies + len(decision.demoted),
                }
            )
        else:
            self._duplicates.inc()
            assert decision.layer is not None and decision.duplicate_of is not None
            yield notice(
                article,
                duplicate_of=decision.duplicate_of,
                layer=DuplicateLayer(decision.layer),
                similarity=decision.similarity,
                story_id=decision.story_id,
            )
        # Any arrival, kept or not, demotes the kept articles it precedes and copies.
        for demotion in decision.demoted:
            self._demoted.inc()
            yield DuplicateNotice(
                article_id=demotion.article_id,
                duplicate_of=article.article_id,
                layer=DuplicateLayer(demotion.layer),
                similarity=demotion.similarity,
                canonical_url=demotion.canonical_url,
                source=SourceRef.model_validate(demotion.source),
                detected_at=utc_now(),
                story_id=decision.story_id,
                was_original=True,
            )


def _copies_by_original(decided: list[tuple[str, Decision]]) -> Counter[str]:
    """Copies decided in one index transaction, each counted for the article its duplicate_of chain leads to."""
    leads_to = {
        article_id: decision.duplicate_of
        for article_id, decision in decided
        if decision.duplicate_of is not None
        and decision.layer in (DuplicateLayer.EXACT_CONTENT, DuplicateLayer.NEAR_DUPLICATE)
    }
    counts: Counter[str] = Counter()
    for target in leads_to.values():
        for _ in range(len(leads_to)):
            if target not in leads_to:
                break
            target = leads_to[target]
        counts[target] += 1
    return counts


class Deduplicate(beam.PTransform):  # type: ignore[misc]
    """EnrichedArticle -> originals (main output), DuplicateNotice (``duplicates`` output) and
    the ``StageFailure`` of each article whose decision raised (``failures``).

    Takes a ``DedupConfig``, or the path of an embedded SQLite index for the defaults.
    """

    def __init__(self, config: DedupConfig | Path) -> None:
        super().__init__()
        self._config = config if isinstance(config, DedupConfig) else DedupConfig(IndexLocation(sqlite_path=config))

    def expand(self, articles: beam.PCollection) -> dict[str, beam.PCollection]:
        config = self._config
        # Nothing crosses a shuffle pickled: grouped articles as CompactCoder's bytes (see
        # _ARTICLES), the other PCollections typed so that CompactCoder (pipeline.coders) applies.
        by_id = (
            articles
            | "KeyById" >> beam.ParDo(_KeyById()).with_output_types(tuple[str, bytes])
            | "GroupById" >> beam.GroupByKey()
            | "LatestPerId"
            >> beam.FlatMap(_keep_latest_version)
            .with_output_types(EnrichedArticle, duplicates=DuplicateNotice, older=EnrichedArticle)
            .with_outputs(DUPLICATES, OLDER, main="kept")
        )
        by_content = (
            by_id.kept
            | "KeyByContent"
            >> beam.Map(lambda a: (a.content_fingerprint, _ARTICLES.encode(a))).with_output_types(tuple[str, bytes])
            | "GroupByContent" >> beam.GroupByKey()
            | "FirstPerContent"
            >> beam.FlatMap(_keep_first_copy)
            .with_output_types(EnrichedArticle, duplicates=DuplicateNotice)
            .with_outputs(DUPLICATES, main="kept")
        )
        older = by_id[OLDER] | "SignOlder" >> beam.Map(
            lambda a: dataclasses.replace(sign(a, config), superseded=True)
        ).with_output_types(Signed)
        kept = by_content.kept | "Sign" >> beam.Map(sign, config).with_output_types(Signed)
        duplicates = [by_id[DUPLICATES], by_content[DUPLICATES]]
        if not config.near_duplicates:
            signed = (kept, older) | "WithOlder" >> beam.Flatten().with_output_types(Signed)
        else:
            # The kept and the older bodies come out of different groupings: each goes to the
            # bands and the join on its own, since a Flatten of the two first would be one more
            # crossing of every signed article on a runner that cannot fuse it (the FnApiRunner).
            members = (
                kept | "ByBand" >> beam.FlatMap(_band_members, BAND_GROUPS),
                older | "ByBandOlder" >> beam.FlatMap(_band_members, BAND_GROUPS),
            ) | "AllBandMembers" >> beam.Flatten()
            earlier = (
                members
                | "GroupByBand" >> beam.GroupByKey()
                | "SimilarPairs" >> beam.FlatMap(_similar_pairs, config.near_threshold)
            )
            # A join, not a side input: on a streaming runner a side input's window is ready
            # only once it holds data (Flink pushes the main input back until then), and most
            # windows have no near copy at all, so the decisions (and every write and offset
            # commit after them) would wait for ever.
            joined = tuple[str, _NearSide]
            sides = (
                older | "KeyOlder" >> beam.Map(_signed_side).with_output_types(joined),
                kept | "KeySigned" >> beam.Map(_signed_side).with_output_types(joined),
                earlier | "KeyEarlier" >> beam.Map(_earlier_side).with_output_types(joined),
            )
            signed = (
                sides
                | "AllSides" >> beam.Flatten().with_output_types(joined)
                | "JoinSimilar" >> beam.GroupByKey()
                | "MarkNearCopies" >> beam.FlatMap(_mark_near_copies).with_output_types(Signed)
            )
        decided = signed | "DecideInIndex" >> beam.ParDo(_DecideInIndex(config)).with_output_types(
            EnrichedArticle, duplicates=DuplicateNotice, failures=StageFailure
        ).with_outputs(DUPLICATES, FAILURES, main="originals")
        duplicates.append(decided[DUPLICATES])
        return {
            ORIGINALS: decided.originals,
            DUPLICATES: tuple(duplicates) | "AllDuplicates" >> beam.Flatten().with_output_types(DuplicateNotice),
            FAILURES: decided[FAILURES],
        }
