"""Builds connectors' and the pipeline's typed arguments from the one settings object.

This is the only module that knows both the settings layout and the components'
constructors; components themselves never read settings or the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.ingest import IngestConfig
from connectors.page_verdicts import VerdictLimits
from connectors.publisher import KafkaPublisher
from newswire.settings import Settings
from newswire.topics import client_config
from pipeline import runners
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from pipeline.enrichers import (
    CountryEnricher,
    DatelineEnricher,
    EntityEnricher,
    KeywordEnricher,
    LanguageEnricher,
    SummaryEnricher,
    TextStatsEnricher,
)
from pipeline.enrichers.base import Enricher
from pipeline.graph import OutputTopics, PipelineConfig
from pipeline.microbatch import BatchReport, MicroBatchService
from pipeline.runners import RunnerConfig
from pipeline.sinks.base import Sink
from pipeline.sinks.jsonl import JsonLinesSink
from pipeline.sinks.parquet import ParquetSink
from pipeline.sinks.postgres import PostgresSink
from pipeline.sinks.sqlite import SqliteSink
from pipeline.streaming import StreamingService

if TYPE_CHECKING:
    from newswire.flink import FlinkJobServer, JobServerInfo

# The job servers this process started, by home (one per home; see ``job_server``).
_job_servers: dict[Path, FlinkJobServer] = {}


def producer_config(settings: Settings) -> dict[str, Any]:
    config = client_config(settings.kafka)
    config["max_request_size"] = settings.kafka.max_message_bytes
    if settings.kafka.compression_type != "none":
        config["compression_type"] = settings.kafka.compression_type
    return config


def publisher(settings: Settings) -> KafkaPublisher:
    return KafkaPublisher(
        producer_config(settings), raw_topic=settings.topics.raw, dead_letter_topic=settings.topics.dead_letter
    )


def enrichers(settings: Settings) -> list[Enricher]:
    factories: dict[str, Callable[[], Enricher]] = {
        TextStatsEnricher.name: lambda: TextStatsEnricher(words_per_minute=settings.pipeline.words_per_minute),
        LanguageEnricher.name: LanguageEnricher,
        EntityEnricher.name: lambda: EntityEnricher(recogniser=settings.pipeline.entity_recogniser),
        KeywordEnricher.name: KeywordEnricher,
        SummaryEnricher.name: SummaryEnricher,
        CountryEnricher.name: CountryEnricher,
        DatelineEnricher.name: DatelineEnricher,
    }
    return [factories[name]() for name in settings.pipeline.enrichers]


def sinks(settings: Settings) -> list[Sink]:
    factories: dict[str, Callable[[], Sink]] = {
        SqliteSink.name: lambda: SqliteSink(settings.sinks.sqlite_path.resolve()),
        JsonLinesSink.name: lambda: JsonLinesSink(settings.sinks.jsonl_path.resolve()),
        PostgresSink.name: lambda: PostgresSink(
            settings.sinks.postgres_dsn, password=settings.sinks.postgres_password, table=settings.sinks.postgres_table
        ),
        ParquetSink.name: lambda: ParquetSink(
            settings.sinks.parquet_path.resolve(),
            roll_bytes=settings.sinks.parquet_roll_bytes,
            roll_interval_s=settings.sinks.parquet_roll_interval_s,
            compression=settings.sinks.parquet_compression,
        ),
    }
    return [factories[name]() for name in settings.sinks.enabled]


def dedup_config(settings: Settings) -> DedupConfig:
    pipeline = settings.pipeline
    redis_url = pipeline.dedup_redis_url.get_secret_value() if pipeline.dedup_redis_url else None
    return DedupConfig(
        IndexLocation(
            sqlite_path=None if redis_url else pipeline.dedup_index.resolve(),
            redis_url=redis_url,
            horizon_s=pipeline.dedup_horizon_s,
        ),
        near_threshold=pipeline.dedup_near_threshold,
        story_threshold=pipeline.dedup_story_threshold,
        near_duplicates=pipeline.dedup_near_duplicates,
        stories=pipeline.dedup_stories,
    )


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        producer_config=producer_config(settings),
        topics=OutputTopics(
            enriched=settings.topics.enriched,
            duplicates=settings.topics.duplicates,
            dead_letter=settings.topics.dead_letter,
        ),
        dedup=dedup_config(settings),
        max_record_bytes=settings.pipeline.max_record_bytes,
        enrichers=enrichers(settings),
        sinks=sinks(settings),
        sink_batch_size=settings.sinks.write_batch_size,
    )


def ingest_config(settings: Settings) -> IngestConfig:
    return IngestConfig(
        producer_config=producer_config(settings),
        consumer_config=client_config(settings.kafka),
        raw_topic=settings.topics.raw,
        dead_letter_topic=settings.topics.dead_letter,
        fetch_topic=settings.topics.fetch_tasks,
        fetch_group=settings.ingest.fetch_group,
        state_file=settings.ingest.state_file.resolve(),
        archive_dir=settings.ingest.archive_dir.resolve(),
        archive_max_file_bytes=settings.ingest.archive_max_file_bytes,
        verdict_limits=VerdictLimits(min_article_words=settings.ingest.min_article_words),
        max_child_sitemaps=settings.ingest.max_child_sitemaps,
        max_entries_per_poll=settings.ingest.max_entries_per_poll,
        date_disagreement_s=settings.ingest.date_disagreement_s,
    )


def runner_config(settings: Settings, *, streaming: bool = False) -> RunnerConfig:
    """The runner's settings; provisions the job server jar when one must be started."""
    pipeline = settings.pipeline
    parallelism = pipeline.parallelism
    if parallelism is None and pipeline.runner == "FnApiRunner":
        parallelism = os.cpu_count() or 1  # the local runner uses the cores it is given
    config = RunnerConfig(
        runner=pipeline.runner,
        streaming=streaming,
        parallelism=parallelism,
        flink_master=pipeline.flink_master,
        flink_job_server_jar=pipeline.flink_job_server_jar,
        job_endpoint=pipeline.job_endpoint,
        environment_type=pipeline.environment_type,
        environment_config=pipeline.environment_config,
        checkpointing_interval_ms=pipeline.checkpointing_interval_ms or None,
        checkpoint_storage=pipeline.flink_checkpoint_dir or (_state_dir(settings) / "flink-checkpoints").as_uri(),
        extra_options=tuple(pipeline.beam_options),
    )
    if config.needs_job_server and config.flink_job_server_jar is None:
        from newswire.flink import provision_job_server

        config = dataclasses.replace(config, flink_job_server_jar=provision_job_server(settings.broker.cache_dir))
    return config


def beam_args(settings: Settings, *, streaming: bool = False) -> list[str]:
    """The Beam options of the pipeline; starts the job server they point at when the runner needs one.

    That job server (``newswire.flink.FlinkJobServer``, files under ``<state>/flink-job-server``)
    belongs to this process: started once, it serves every pipeline the process runs, and
    stops when the process ends, however it ends.
    """
    config = runner_config(settings, streaming=streaming)
    if config.needs_job_server:
        config = dataclasses.replace(config, job_endpoint=job_server(settings, config).endpoint)
    return runners.beam_args(config)


def job_server(settings: Settings, config: RunnerConfig) -> JobServerInfo:
    """Start this process's job server for ``config``'s jar and Flink master, or return the running one."""
    from newswire.flink import FlinkJobServer

    assert config.flink_job_server_jar is not None, "runner_config provisions the jar"
    home = (_state_dir(settings) / "flink-job-server").resolve()
    java, jvm_options = config.job_server_java
    launch = (config.flink_job_server_jar, config.flink_master, java, tuple(jvm_options))
    server = _job_servers.get(home)
    if server is not None and (server.jar, server.flink_master, server.java, server.jvm_options) != launch:
        server.stop()
        server = None
    if server is None:
        server = _job_servers[home] = FlinkJobServer(
            config.flink_job_server_jar,
            home,
            flink_master=config.flink_master,
            start_timeout_s=settings.pipeline.flink_job_server_start_timeout_s,
            java=java,
            jvm_options=jvm_options,
        )
    return server.start()  # returns at once while it runs


def _state_dir(settings: Settings) -> Path:
    """Where the pipeline keeps local state: beside the embedded dedup index."""
    return settings.pipeline.dedup_index.resolve().parent


def streaming_service(settings: Settings) -> StreamingService:
    config = dataclasses.replace(pipeline_config(settings), streaming_window_s=settings.pipeline.streaming_window_s)
    return StreamingService(
        consumer_config=client_config(settings.kafka),
        raw_topic=settings.topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=config,
        beam_args=beam_args(settings, streaming=True),
        watermark_lag_s=settings.pipeline.watermark_lag_s,
    )


def micro_batch_service(settings: Settings, on_batch: Any = None) -> MicroBatchService:
    parallel = beam_args(settings)
    single = runners.beam_args(runners.in_one_process(runner_config(settings)))
    return MicroBatchService(
        consumer_config=client_config(settings.kafka),
        raw_topic=settings.topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=pipeline_config(settings),
        beam_args=single,
        parallel_beam_args=parallel if parallel != single else None,
        parallel_min_records=settings.pipeline.parallel_min_records,
        max_batch_records=settings.pipeline.max_batch_records,
        interval_s=settings.pipeline.batch_interval_s,
        on_batch=on_batch,
    )


__all__ = [
    "BatchReport",
    "beam_args",
    "job_server",
    "micro_batch_service",
    "pipeline_config",
    "publisher",
    "runner_config",
    "sinks",
    "streaming_service",
]
