"""The whole pipeline, wired from its stages: read -> decode -> dedup -> enrich -> write.

Dedup comes before the enrichers because no enricher's field decides whether an article
is a copy (dedup compares bodies, titles, publication times and ids): the copies (wire
reprints and syndication; 22.6% of the throughput benchmark's stream) then cost no
enrichment, and the shuffles of the dedup stage move articles without their enriched
fields. Only what is published is enriched.

``build_pipeline`` takes the source as a PTransform so that the same graph runs over a
bounded micro-batch of Kafka offsets, an unbounded Kafka read on a streaming runner, or
``beam.Create`` in a test.

Every stage that can refuse one element says so on a side output (decode's dead letters,
and the ``StageFailure``s of enrich, dedup, each sink and each Kafka write); they all end
in the one ``WriteDeadLetters``, located at their raw record's coordinates, and the rest
of the batch goes on. A dependency that is down fails the batch instead (see
``pipeline.dependencies``): that is never an element's fault.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows

from pipeline import metering
from pipeline.dead_letter_writer import RefuseOversized, WriteDeadLetters
from pipeline.dead_letters import FAILURES, POSITIONS, LocateFailures, StageFailure
from pipeline.decode import DEAD_LETTERS, DecodeArticles
from pipeline.dedup import DUPLICATES, ORIGINALS, Deduplicate
from pipeline.dedup.decide import DedupConfig
from pipeline.enrich import Enrich, without_enrichers
from pipeline.enrichers.base import Enricher
from pipeline.kafka_io import KafkaMessage, WriteToKafka
from pipeline.sinks.base import Sink, WriteToSink
from schemas import DeadLetter, DuplicateNotice, EnrichedArticle, encode, record_headers
from schemas.dead_letter import DEFAULT_MAX_ORIGINAL_BYTES


@dataclass(frozen=True)
class OutputTopics:
    enriched: str
    duplicates: str
    dead_letter: str


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the graph needs, as plain picklable values (no settings lookups inside)."""

    producer_config: Mapping[str, Any]
    topics: OutputTopics
    dedup: DedupConfig
    max_record_bytes: int
    max_enriched_bytes: int
    max_dead_letter_bytes: int
    enrichers: Sequence[Enricher] = field(default_factory=list)
    sinks: Sequence[Sink] = field(default_factory=list)
    sink_batch_size: int = 500
    # How much of a refused article a dead letter of a later stage keeps (DeadLetter.of bounds it).
    dead_letter_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES
    # Streaming runners need finite windows before GroupByKey; bounded batches do not.
    streaming_window_s: float | None = None
    # Set by the micro-batch service on a re-run: since when (epoch ms) an earlier attempt at the
    # same records may have published to enriched and duplicates; those writes skip what is there.
    rerun_since_ms: int | None = None


def article_message(article: EnrichedArticle) -> KafkaMessage:
    return KafkaMessage(key=article.article_id.encode(), value=encode(article), headers=tuple(record_headers(article)))


def duplicate_message(duplicate: DuplicateNotice) -> KafkaMessage:
    return KafkaMessage(
        key=duplicate.article_id.encode(), value=encode(duplicate), headers=tuple(record_headers(duplicate))
    )


def dead_letter_message(dead_letter: DeadLetter) -> KafkaMessage:
    key = dead_letter.dead_letter_id.encode() if dead_letter.dead_letter_id else None
    return KafkaMessage(key=key, value=encode(dead_letter), headers=tuple(record_headers(dead_letter)))


def _fields(message: KafkaMessage, *names: str) -> str | None:
    """The identity made of ``names`` in a published record's JSON; None if it is not one of ours."""
    try:
        record = json.loads(message.value)
        return json.dumps([record[name] for name in names])
    except (ValueError, TypeError, KeyError):
        return None


def article_identity(message: KafkaMessage) -> str | None:
    """What makes an enriched record the same publication across re-runs (not enriched_at)."""
    return _fields(message, "article_id", "version", "content_fingerprint")


def duplicate_identity(message: KafkaMessage) -> str | None:
    """What makes a duplicate notice the same decision across re-runs (not detected_at)."""
    return _fields(message, "article_id", "duplicate_of", "was_original")


def refused_article(article: EnrichedArticle, error: BaseException) -> StageFailure:
    return StageFailure.of(article, stage="kafka:enriched", error_type="write_refused", error=error)


def build_pipeline(pipeline: beam.Pipeline, source: beam.PTransform, config: PipelineConfig) -> None:
    records = pipeline | "Read" >> source
    if config.streaming_window_s:
        records = records | "Window" >> beam.WindowInto(FixedWindows(config.streaming_window_s))
    decoded = records | "Decode" >> DecodeArticles(
        config.max_record_bytes, max_original_bytes=config.dead_letter_original_bytes
    )
    derived = decoded.articles | "Fingerprint" >> beam.Map(without_enrichers).with_output_types(EnrichedArticle)
    deduplicated = derived | "Deduplicate" >> Deduplicate(config.dedup)
    enriched = deduplicated[ORIGINALS] | "Enrich" >> Enrich(config.enrichers).with_failures()
    # Checked before any write, so that the sinks and the enriched topic agree on what was published.
    fitting = enriched.articles | "FitEnriched" >> RefuseOversized(
        config.max_enriched_bytes, limit_name="limits.max_article_bytes + limits.enriched_headroom_bytes"
    )
    failures = [enriched[FAILURES], deduplicated[FAILURES], fitting[FAILURES]]
    originals = fitting.fitting
    demoted = (
        deduplicated[DUPLICATES]
        | "Demoted" >> beam.Filter(lambda notice: notice.was_original)
        | "DemotedIds" >> beam.Map(lambda notice: notice.article_id)
    )
    for sink in config.sinks:
        written = originals | f"WriteTo{sink.name.title()}" >> WriteToSink(sink, config.sink_batch_size)
        failures.append(written[FAILURES])
        if sink.withdraws:
            _ = demoted | f"WithdrawFrom{sink.name.title()}" >> WriteToSink(sink, config.sink_batch_size, withdraw=True)
    published = originals | "WriteEnriched" >> WriteToKafka(
        config.producer_config,
        config.topics.enriched,
        article_message,
        to_failure=refused_article,
        identify=article_identity,
        already_since_ms=config.rerun_since_ms,
    )
    failures.append(published[FAILURES])
    _ = deduplicated[DUPLICATES] | "WriteDuplicates" >> WriteToKafka(
        config.producer_config,
        config.topics.duplicates,
        duplicate_message,
        identify=duplicate_identity,
        already_since_ms=config.rerun_since_ms,
    )
    located = (
        tuple(failures)
        | "AllFailures" >> beam.Flatten()
        | "LocateFailures" >> LocateFailures(decoded[POSITIONS], max_original_bytes=config.dead_letter_original_bytes)
    )
    dead_letters = (decoded[DEAD_LETTERS], located) | "AllDeadLetters" >> beam.Flatten()
    _ = dead_letters | "WriteDeadLetters" >> WriteDeadLetters(
        config.producer_config, config.topics.dead_letter, max_record_bytes=config.max_dead_letter_bytes
    )
    _meter(enriched.articles, deduplicated, dead_letters)


def _meter(enriched: Any, deduplicated: Any, dead_letters: Any) -> None:
    """Counts on side branches (see ``pipeline.metering``): what enrich took in (the originals dedup
    let out) and let out (decode and dedup count their own), every duplicate notice by layer, every
    dead letter by stage and type."""
    _ = deduplicated[ORIGINALS] | "MeterEnrichIn" >> metering.stage_records(("enrich", "in"))
    _ = enriched | "MeterEnrichOut" >> metering.stage_records(("enrich", "out"))
    _ = deduplicated[DUPLICATES] | "MeterDuplicates" >> metering.duplicate_notices()
    _ = dead_letters | "MeterDeadLetters" >> metering.dead_letters()
