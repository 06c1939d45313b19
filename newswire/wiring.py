"""Builds connectors' and the pipeline's typed arguments from the one settings object.

This is the only module that knows both the settings layout and the components'
constructors; components themselves never read settings or the environment.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.ingest import IngestConfig, IngestService
from connectors.ingest import RetryPolicy as FetchRetryPolicy
from connectors.page_verdicts import VerdictLimits
from connectors.publisher import KafkaPublisher, PublishLimits
from connectors.sources import SourceConfig
from newswire.settings import Settings
from newswire.topics import consumer_config as kafka_consumer_config
from newswire.topics import producer_config as kafka_producer_config
from pipeline import runners
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from pipeline.enrichers import ENRICHERS
from pipeline.enrichers.base import Enricher
from pipeline.graph import OutputTopics, PipelineConfig
from pipeline.microbatch import BatchReport, Health, MicroBatchService, RetryPolicy
from pipeline.registry import Registered
from pipeline.runners import RunnerConfig
from pipeline.sinks import SINKS
from pipeline.sinks.base import Sink
from pipeline.streaming import StreamingService
from schemas.client_config import ClientConfig

if TYPE_CHECKING:
    from newswire.flink import FlinkJobServer, JobServerInfo

T = TypeVar("T")


def producer_config(settings: Settings) -> ClientConfig:
    return kafka_producer_config(settings.kafka, settings.limits)


def consumer_config(settings: Settings) -> ClientConfig:
    return kafka_consumer_config(settings.kafka, settings.limits)


def publish_limits(settings: Settings) -> PublishLimits:
    limits = settings.limits
    return PublishLimits(
        max_article_bytes=limits.max_article_bytes,
        max_dead_letter_bytes=limits.max_dead_letter_bytes,
        max_dead_letter_original_bytes=limits.max_dead_letter_original_bytes,
        max_fetch_task_bytes=limits.max_fetch_task_bytes,
    )


def publisher(settings: Settings) -> KafkaPublisher:
    return KafkaPublisher(
        producer_config(settings),
        raw_topic=settings.topics.raw,
        dead_letter_topic=settings.topics.dead_letter,
        limits=publish_limits(settings),
    )


def enrichers(settings: Settings) -> list[Enricher]:
    return [_build(ENRICHERS[name], settings.pipeline) for name in settings.pipeline.enrichers]


def sinks(settings: Settings) -> list[Sink]:
    return [_build(SINKS[name], settings.sinks) for name in settings.sinks.enabled]


def _build(entry: Registered[T], section: object) -> T:
    """A registered component, its arguments read from the settings fields its entry names.

    Paths are resolved here: the components are pickled to workers that may run elsewhere
    than the working directory the settings were read in.
    """
    values = {argument: getattr(section, name) for argument, name in entry.settings.items()}
    return entry.build({k: v.resolve() if isinstance(v, Path) else v for k, v in values.items()})


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
        decide_batch=pipeline.dedup_decide_batch,
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
        max_record_bytes=settings.limits.max_article_bytes,
        max_enriched_bytes=settings.limits.max_enriched_bytes,
        max_dead_letter_bytes=settings.limits.max_dead_letter_bytes,
        dead_letter_original_bytes=settings.limits.max_dead_letter_original_bytes,
        enrichers=enrichers(settings),
        sinks=sinks(settings),
        sink_batch_size=settings.sinks.write_batch_size,
    )


def ingest_config(settings: Settings) -> IngestConfig:
    return IngestConfig(
        producer_config=producer_config(settings),
        consumer_config=consumer_config(settings),
        raw_topic=settings.topics.raw,
        dead_letter_topic=settings.topics.dead_letter,
        fetch_topic=settings.topics.fetch_tasks,
        fetch_group=settings.ingest.fetch_group,
        state_file=settings.ingest.state_file.resolve(),
        archive_dir=settings.ingest.archive_dir.resolve(),
        archive_max_file_bytes=settings.ingest.archive_max_file_bytes,
        publish_limits=publish_limits(settings),
        verdict_limits=VerdictLimits(min_article_words=settings.ingest.min_article_words),
        max_child_sitemaps=settings.ingest.max_child_sitemaps,
        max_entries_per_poll=settings.ingest.max_entries_per_poll,
        date_disagreement_s=settings.ingest.date_disagreement_s,
        future_date_tolerance_s=settings.ingest.future_date_tolerance_s,
        retry=FetchRetryPolicy(
            max_attempts=settings.ingest.retry_max_attempts,
            max_age_s=settings.ingest.retry_max_age_s,
            backoff_s=settings.ingest.retry_backoff_s,
            backoff_max_s=settings.ingest.retry_backoff_max_s,
            jitter=settings.ingest.retry_jitter,
            retry_after_max_s=settings.ingest.retry_after_max_s,
            max_task_deliveries=settings.ingest.max_task_deliveries,
            poll_gave_up_after=settings.ingest.poll_gave_up_after,
        ),
        schedule_check_interval_s=settings.ingest.schedule_check_interval_s,
        fetch_session_timeout_s=settings.ingest.fetch_session_timeout_s,
        max_host_wait_s=settings.ingest.max_host_wait_s,
    )


def ingest_service(
    settings: Settings, sources: tuple[SourceConfig, ...], *, workers: int | None = None, **hooks: Any
) -> IngestService:
    """The ingest service for ``sources``; ``hooks`` are its optional callbacks (health, on_poll, on_fetch)."""
    return IngestService(
        ingest_config(settings), sources, settings.fetch, workers=workers or settings.ingest.fetch_workers, **hooks
    )


def runner_config(settings: Settings, *, streaming: bool = False) -> RunnerConfig:
    """The runner's settings; provisions the job server jar when one must be started."""
    pipeline = settings.pipeline
    config = RunnerConfig(
        runner=pipeline.runner,
        streaming=streaming,
        parallelism=pipeline.parallelism,
        flink_master=pipeline.flink_master,
        flink_job_server_jar=pipeline.flink_job_server_jar,
        job_endpoint=pipeline.job_endpoint,
        environment_type=pipeline.environment_type,
        environment_config=pipeline.environment_config,
        checkpointing_interval_ms=pipeline.checkpointing_interval_ms or None,
        checkpoint_storage=pipeline.flink_checkpoint_dir
        or (pipeline.state_dir.resolve() / "flink-checkpoints").as_uri(),
        extra_options=tuple(pipeline.beam_options),
    )
    if config.needs_job_server and config.flink_job_server_jar is None:
        from newswire.flink import provision_job_server

        config = dataclasses.replace(config, flink_job_server_jar=provision_job_server(settings.broker.cache_dir))
    return config


def beam_args(settings: Settings, job_servers: JobServers, *, streaming: bool = False) -> list[str]:
    """The Beam options of the pipeline; starts the job server they point at when the runner needs one.

    That job server (``newswire.flink.FlinkJobServer``, files under ``<state_dir>/flink-job-server``)
    belongs to ``job_servers``: it serves every pipeline built with them and stops when their
    ``with`` block ends (or the process does, however it ends).
    """
    config = runner_config(settings, streaming=streaming)
    if config.needs_job_server:
        config = dataclasses.replace(config, job_endpoint=job_servers.start(settings, config).endpoint)
    return runners.beam_args(config)


class JobServers:
    """The Flink job servers one command runs: one per home, started on first need, reused by
    every pipeline the command builds, all stopped when its ``with`` block ends.

    An object the command holds, not process-global state: two commands (or two tests) in one
    process each stop only their own.
    """

    def __init__(self) -> None:
        self._by_home: dict[Path, FlinkJobServer] = {}

    def __enter__(self) -> JobServers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        servers, self._by_home = list(self._by_home.values()), {}
        for server in reversed(servers):
            server.stop()

    def start(self, settings: Settings, config: RunnerConfig) -> JobServerInfo:
        """Start the job server for ``config``'s jar and Flink master, or return the running one."""
        from newswire.flink import FlinkJobServer

        assert config.flink_job_server_jar is not None, "runner_config provisions the jar"
        home = (settings.pipeline.state_dir / "flink-job-server").resolve()
        java, jvm_options = config.job_server_java
        launch = (config.flink_job_server_jar, config.flink_master, java, tuple(jvm_options))
        server = self._by_home.get(home)
        if server is not None and (server.jar, server.flink_master, server.java, server.jvm_options) != launch:
            server.stop()
            server = None
        if server is None:
            server = self._by_home[home] = FlinkJobServer(
                config.flink_job_server_jar,
                home,
                flink_master=config.flink_master,
                start_timeout_s=settings.pipeline.flink_job_server_start_timeout_s,
                java=java,
                jvm_options=jvm_options,
            )
        return server.start()  # returns at once while it runs


def streaming_service(settings: Settings, job_servers: JobServers) -> StreamingService:
    config = dataclasses.replace(pipeline_config(settings), streaming_window_s=settings.pipeline.streaming_window_s)
    return StreamingService(
        consumer_config=consumer_config(settings),
        raw_topic=settings.topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=config,
        beam_args=beam_args(settings, job_servers, streaming=True),
        watermark_lag_s=settings.pipeline.watermark_lag_s,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    recovery = settings.recovery
    return RetryPolicy(
        attempts=recovery.batch_attempts,
        initial_backoff_s=recovery.initial_backoff_s,
        max_backoff_s=recovery.max_backoff_s,
    )


def batch_processes(settings: Settings) -> int:
    """The worker processes the micro-batch service cuts a large batch over: every core unless
    ``pipeline.parallelism`` says otherwise, and 1 on a runner that spreads a batch itself."""
    # Only the runner and its parallelism count: runner_config would provision a job server jar.
    config = RunnerConfig(runner=settings.pipeline.runner, parallelism=settings.pipeline.parallelism)
    return runners.batch_processes(config, os.cpu_count() or 1)


def micro_batch_service(
    settings: Settings, job_servers: JobServers, on_batch: Any = None, health: Health | None = None
) -> MicroBatchService:
    return MicroBatchService(
        consumer_config=consumer_config(settings),
        raw_topic=settings.topics.raw,
        consumer_group=settings.pipeline.consumer_group,
        config=pipeline_config(settings),
        beam_args=beam_args(settings, job_servers),
        processes=batch_processes(settings),
        parallel_min_records=settings.pipeline.parallel_min_records,
        max_piece_records=settings.pipeline.max_piece_records,
        max_batch_records=settings.pipeline.max_batch_records,
        interval_s=settings.pipeline.batch_interval_s,
        on_batch=on_batch,
        retry=retry_policy(settings),
        health=health,
    )


__all__ = [
    "BatchReport",
    "JobServers",
    "batch_processes",
    "beam_args",
    "micro_batch_service",
    "pipeline_config",
    "publisher",
    "retry_policy",
    "runner_config",
    "sinks",
    "streaming_service",
]
