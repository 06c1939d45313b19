"""Prometheus metrics of the running service, fed from micro-batch reports."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pipeline.microbatch import BatchReport


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches = Counter("newswire_batches_total", "Micro-batches committed.", registry=self.registry)
        self.records = Counter("newswire_records_total", "Raw records consumed.", registry=self.registry)
        self.batch_seconds = Histogram(
            "newswire_batch_seconds",
            "Wall time of one micro-batch.",
            registry=self.registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self.stage_events = Counter(
            "newswire_pipeline_events_total", "Beam counters by stage and name.", ["counter"], registry=self.registry
        )
        self.last_batch = Gauge(
            "newswire_last_batch_timestamp_seconds", "When the last batch committed.", registry=self.registry
        )

    def serve(self, host: str, port: int) -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)

    def observe_batch(self, report: BatchReport) -> None:
        self.batches.inc()
        self.records.inc(report.records)
        self.batch_seconds.observe(report.duration_s)
        for name, value in report.counters.items():
            self.stage_events.labels(counter=name).inc(value)
        self.last_batch.set_to_current_time()


class IngestMetrics:
    """Outcomes of polls and page fetches, per source, for the ingest service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "newswire_polls_total", "Source polls by outcome.", ["source", "outcome"], registry=self.registry
        )
        self.fetches = Counter(
            "newswire_page_fetches_total",
            "Page fetch tasks by typed outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)
