"""Wires each service's metrics, readiness checks and endpoint from the settings.

One place knows which checks each service is ready on (pipeline: the broker, every enabled
sink, the dedup index; ingest: the broker, its state file and page archive) and which
port serves them. The services themselves only call the ``health`` callback and report
counts; the endpoint is served for the life of the command, across catch-up and
continuous phases alike, so a batch committed in any phase is counted where it is scraped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from newswire.health import (
    Probe,
    Readiness,
    ServiceEndpoint,
    broker_probe,
    directory_writable_probe,
    sqlite_writable_probe,
)
from newswire.metrics import ConsumerLag, FetchMetrics, IngestMetrics, PipelineMetrics
from newswire.settings import Settings
from newswire.topics import client_config
from pipeline.microbatch import BatchReport
from pipeline.quality.drift import DriftRule

log = logging.getLogger(__name__)


@dataclass
class PipelineObservers:
    metrics: PipelineMetrics
    readiness: Readiness
    endpoint: ServiceEndpoint
    port: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lag: ConsumerLag | None = None

    def observe_batch(self, report: BatchReport) -> None:
        """The ``on_batch`` of the micro-batch service."""
        self.metrics.observe_batch(report)
        if self.lag is not None:
            self.lag.wake()

    @classmethod
    def start(cls, settings: Settings, *, serve: bool) -> PipelineObservers:
        """Metrics and readiness of the micro-batch pipeline; served on ``observability.metrics_port``
        when ``serve`` (a one-shot catch-up has no one to scrape it)."""
        registry = CollectorRegistry()
        metrics = PipelineMetrics(registry, dead_letter_topic=settings.topics.dead_letter)
        if settings.pipeline.dedup_redis_url is None:
            metrics.watch_index(settings.pipeline.dedup_index.resolve())
        sink_checks = [f"sink:{name}" for name in settings.sinks.enabled]
        readiness = Readiness("pipeline", ["broker", *sink_checks, "index"], registry)
        observers = cls(metrics, readiness, ServiceEndpoint(registry, readiness))
        if not serve:
            return observers
        observability = settings.observability
        interval = observability.probe_interval_s
        readiness.probe(
            "broker",
            broker_probe(client_config(settings.kafka), settings.topics.raw),
            interval_s=interval,
            stop=observers.stop,
        )
        for name, probe in _sink_probes(settings).items():
            readiness.probe(name, probe, interval_s=interval, stop=observers.stop)
        if settings.pipeline.dedup_redis_url is None:
            index = sqlite_writable_probe(settings.pipeline.dedup_index.resolve(), "dedup index")
            readiness.probe("index", index, interval_s=interval, stop=observers.stop)
        else:
            readiness.report("index", True, "shared Redis index (checked by the pipeline itself)")
        observers.lag = ConsumerLag(
            client_config(settings.kafka),
            settings.topics.raw,
            settings.pipeline.consumer_group,
            metrics.observe_lag,
            interval_s=observability.lag_interval_s,
        )
        observers.lag.start(observers.stop)
        if observability.metrics_port:
            observers.port = observers.endpoint.serve(observability.metrics_host, observability.metrics_port)
            log.info(
                "pipeline endpoint", extra={"url": f"http://{observability.metrics_host}:{observers.port}/metrics"}
            )
        return observers

    def close(self) -> None:
        self.stop.set()
        self.endpoint.close()


def _sink_probes(settings: Settings) -> dict[str, Probe]:
    sinks = settings.sinks
    probes: dict[str, Probe] = {}
    for name in sinks.enabled:
        if name == "sqlite":
            probes["sink:sqlite"] = sqlite_writable_probe(sinks.sqlite_path.resolve(), "SQLite sink")
        elif name == "jsonl":
            probes["sink:jsonl"] = directory_writable_probe(sinks.jsonl_path.resolve().parent, "JSON Lines directory")
        elif name == "parquet":
            probes["sink:parquet"] = directory_writable_probe(sinks.parquet_path.resolve(), "Parquet dataset")
        elif name == "postgres":
            probes["sink:postgres"] = _postgres_probe(settings)
    return probes


def _postgres_probe(settings: Settings) -> Probe:
    def probe() -> tuple[bool, str]:
        import psycopg

        password = settings.sinks.postgres_password
        try:
            with psycopg.connect(
                settings.sinks.postgres_dsn,
                password=password.get_secret_value() if password else None,
                connect_timeout=3,
            ) as db:
                db.execute("SELECT 1")
        except psycopg.Error as error:
            return False, f"PostgreSQL sink unreachable: {error}".strip()
        return True, "PostgreSQL sink answers"

    return probe


@dataclass
class IngestObservers:
    metrics: IngestMetrics
    fetch: FetchMetrics
    readiness: Readiness
    endpoint: ServiceEndpoint
    port: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, settings: Settings, *, serve: bool) -> IngestObservers:
        """Metrics and readiness of the ingest service; served on ``observability.ingest_metrics_port``
        unless ``serve`` is false (``--once``)."""
        registry = CollectorRegistry()
        metrics = IngestMetrics(registry)
        metrics.watch_archive(settings.ingest.archive_dir.resolve())
        fetch = FetchMetrics(registry)
        readiness = Readiness("ingest", ["broker", "state", "archive"], registry)
        observers = cls(metrics, fetch, readiness, ServiceEndpoint(registry, readiness))
        if not serve:
            return observers
        interval = settings.observability.probe_interval_s
        readiness.probe(
            "broker",
            broker_probe(client_config(settings.kafka), settings.topics.fetch_tasks),
            interval_s=interval,
            stop=observers.stop,
        )
        readiness.probe(
            "state",
            sqlite_writable_probe(settings.ingest.state_file.resolve(), "connector state"),
            interval_s=interval,
            stop=observers.stop,
        )
        readiness.probe(
            "archive",
            directory_writable_probe(settings.ingest.archive_dir.resolve(), "page archive"),
            interval_s=interval,
            stop=observers.stop,
        )
        port = settings.observability.ingest_metrics_port
        if port:
            observers.port = observers.endpoint.serve(settings.observability.metrics_host, port)
        return observers

    def close(self) -> None:
        self.stop.set()
        self.endpoint.close()


def drift_rule(settings: Settings) -> DriftRule:
    quality = settings.quality
    return DriftRule(
        window=quality.window,
        baseline=quality.baseline,
        min_window=quality.min_window,
        min_baseline=quality.min_baseline,
        z_threshold=quality.z_threshold,
        min_drop=quality.min_drop,
        body_ratio=quality.body_ratio,
    )


def pipeline_metrics_url(settings: Settings) -> str:
    o = settings.observability
    return o.console_pipeline_metrics_url or f"http://{o.metrics_host}:{o.metrics_port}/metrics"


def ingest_metrics_url(settings: Settings) -> str:
    o = settings.observability
    return o.console_ingest_metrics_url or f"http://{o.metrics_host}:{o.ingest_metrics_port}/metrics"
