"""The console's web application: sources, pipeline, dead letters and articles, read-only.

Starlette routes render Jinja templates with autoescaping on: article text and feed fields
are untrusted, so every value reaches the page escaped, and data for the charts travels as
JSON through ``tojson`` (never as markup). Charts are drawn by uPlot, served from the
package's own static directory (no CDN). The console also runs the quality monitor
(``pipeline.quality.monitor``), whose verdicts it shows and exports on its ``/metrics``.
It never writes to a topic or a sink, and it binds to 127.0.0.1 unless configured otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.sources import SourceConfig, SourcesFileError, load_sources
from newswire.console.readers import (
    ArticleIndex,
    DeadLetterLog,
    MetricsSampler,
    TopicFollower,
    mean_series,
    rate_series,
)
from newswire.console.status import SourceSignals, Status, source_status
from newswire.health import Readiness, broker_probe, sqlite_readable_probe, sqlite_writable_probe
from newswire.metrics import QualityMetrics
from newswire.monitoring import drift_rule, ingest_metrics_url, pipeline_metrics_url
from newswire.settings import Settings
from newswire.topics import client_config
from pipeline.quality.drift import ARTICLE_FIELDS, SourceQuality, SourceStatus
from pipeline.quality.monitor import QualityMonitor, QualityStore
from pipeline.sinks import sqlite as sqlite_sink

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SPARK_BUCKET_S = 300  # five-minute buckets over the last hour


@dataclass
class Console:
    """Everything the pages read, started once per console process."""

    settings: Settings
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        settings = self.settings
        observability = settings.observability
        self.sqlite_path = settings.sinks.sqlite_path.resolve()
        self.pipeline = MetricsSampler(pipeline_metrics_url(settings), observability.console_sample_interval_s)
        self.ingest = MetricsSampler(ingest_metrics_url(settings), observability.console_sample_interval_s)
        self.dead_letters = DeadLetterLog(observability.console_backlog)
        self.articles = ArticleIndex(observability.console_backlog * settings.topics.partitions)
        self.quality_metrics = QualityMetrics(self.registry)
        self.readiness = Readiness("console", ["broker", "sink:sqlite", "quality"], self.registry)
        self.store = QualityStore(settings.quality.state_file.resolve(), drift_rule(settings))
        self.quality_metrics.publish(self.store.statuses())

    def start(self) -> None:
        settings, stop = self.settings, self.stop
        consumer = client_config(settings.kafka)
        backlog = settings.observability.console_backlog
        for sampler in (self.pipeline, self.ingest):
            threading.Thread(target=sampler.run, args=(stop,), daemon=True).start()
        TopicFollower(consumer, settings.topics.dead_letter, backlog, self.dead_letters.add).start(stop)
        TopicFollower(consumer, settings.topics.enriched, backlog, self.articles.add_enriched).start(stop)
        TopicFollower(consumer, settings.topics.duplicates, backlog, self.articles.add_duplicate).start(stop)
        self.monitor = QualityMonitor(
            self.store,
            consumer_config=consumer,
            enriched_topic=settings.topics.enriched,
            dead_letter_topic=settings.topics.dead_letter,
            group_id=settings.quality.consumer_group,
            on_change=self.quality_metrics.publish,
        )
        self.monitor.start(stop)
        interval = settings.observability.probe_interval_s
        self.readiness.probe("broker", broker_probe(consumer, settings.topics.enriched), interval_s=interval, stop=stop)
        self.readiness.probe(
            "sink:sqlite", sqlite_readable_probe(self.sqlite_path, "SQLite sink"), interval_s=interval, stop=stop
        )
        self.readiness.probe(
            "quality",
            sqlite_writable_probe(settings.quality.state_file.resolve(), "quality state"),
            interval_s=interval,
            stop=stop,
        )

    def close(self) -> None:
        self.stop.set()

    # --- what the pages show ----------------------------------------------------------------

    def configured_sources(self) -> dict[str, SourceConfig]:
        try:
            return {s.name: s for s in load_sources(self.settings.ingest.sources_file)}
        except (SourcesFileError, OSError):
            return {}

    def source_rows(self) -> list[dict[str, Any]]:
        now = time.time()
        ingest = self.ingest.latest()
        qualities = {q.source: q for q in self.store.statuses()}
        configured = self.configured_sources()
        buckets: dict[str, list[tuple[int, int]]] = {}
        last_written: dict[str, str] = {}
        if self.sqlite_path.exists():
            since = datetime.fromtimestamp(now - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            buckets = sqlite_sink.articles_per_source(self.sqlite_path, since=since, bucket_s=SPARK_BUCKET_S)
            last_written = sqlite_sink.last_article_per_source(self.sqlite_path)
        dead = Counter(item.dead_letter.source_name for item in self.dead_letters.newest())
        names = set(configured) | set(qualities) | set(last_written) | {n for n in dead if n}
        if ingest is not None:
            names |= {dict(labels)["source"] for labels in ingest.series("newswire_polls_total")}
        rows = []
        for name in sorted(names):
            metric = _source_metrics(ingest, name)
            quality = qualities.get(name)
            last_article = metric["last_article"] or _unix(last_written.get(name))
            signals = SourceSignals(
                drifting=quality is not None and quality.status is SourceStatus.DRIFTING,
                consecutive_failures=int(metric["failures"] or 0),
                polls=int(metric["polls"]),
                poll_interval_s=metric["interval"],
                last_article_at=last_article,
                configured=name in configured,
            )
            status, reason = source_status(
                signals, now=now, silent_factor=self.settings.observability.console_silent_factor
            )
            counts = dict(buckets.get(name, []))
            first = int(now - 3600) // SPARK_BUCKET_S * SPARK_BUCKET_S
            spark = [[b for b in range(first, int(now) + 1, SPARK_BUCKET_S)]]
            spark.append([counts.get(b, 0) for b in spark[0]])
            source = configured.get(name)
            rows.append(
                {
                    "name": name,
                    "type": source.type.value if source else ("seed" if name.endswith(".txt") else "-"),
                    "url": source.url if source else None,
                    "status": status.value,
                    "reason": _drift_reason(quality) if status is Status.DRIFTING else reason,
                    "last_success": _ago(metric["last_success"], now),
                    "next_poll": _until(metric["next_poll"], now),
                    "articles_per_hour": sum(counts.values()),
                    "dead_letters": dead.get(name, 0),
                    "completeness": _completeness(quality),
                    "drifting": [
                        {
                            "field": f.name,
                            "since": f.drifting_since.isoformat(),
                            "since_text": f.drifting_since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                        }
                        for f in (quality.drifting if quality else ())
                        if f.drifting_since
                    ],
                    "quality": quality.status.value if quality else "no pages yet",
                    "spark": spark,
                }
            )
        return rows

    def pipeline_data(self) -> dict[str, Any]:
        scrapes = self.pipeline.history()
        latest = scrapes[-1] if scrapes else None
        lag = []
        if latest is not None:
            for labels, value in sorted(latest.series("newswire_consumer_lag_records").items()):
                lag.append({**dict(labels), "records": int(value)})
        throughput = rate_series(scrapes, "newswire_records_consumed_total")
        latency = mean_series(scrapes, "newswire_batch_duration_seconds_sum", "newswire_batch_duration_seconds_count")
        return {
            "error": self.pipeline.error,
            "lag": lag,
            "batches": int(latest.total("newswire_batches_total")) if latest else 0,
            "records": int(latest.total("newswire_records_consumed_total")) if latest else 0,
            "throughput": [[t for t, _ in throughput], [v for _, v in throughput]],
            "latency": [[t for t, _ in latency], [v for _, v in latency]],
        }


def _source_metrics(scrape: Any, source: str) -> dict[str, Any]:
    if scrape is None:
        return {k: None for k in ("last_success", "next_poll", "interval", "failures", "last_article")} | {"polls": 0}
    polls = sum(
        v for labels, v in scrape.series("newswire_polls_total").items() if dict(labels).get("source") == source
    )
    return {
        "last_success": scrape.get("newswire_source_last_success_timestamp_seconds", source=source),
        "next_poll": scrape.get("newswire_source_next_poll_timestamp_seconds", source=source),
        "interval": scrape.get("newswire_source_poll_interval_seconds", source=source),
        "failures": scrape.get("newswire_source_consecutive_failures", source=source),
        "last_article": scrape.get("newswire_source_last_article_timestamp_seconds", source=source),
        "polls": polls,
    }


def _completeness(quality: SourceQuality | None) -> list[dict[str, Any]]:
    if quality is None:
        return []
    shares = {f.name: f for f in quality.fields}
    return [
        {
            "field": name,
            "share": round(shares[name].window_share * 100),
            "drifting": shares[name].drifting_since is not None,
        }
        for name in ARTICLE_FIELDS
        if name in shares
    ]


def _drift_reason(quality: SourceQuality | None) -> str:
    if quality is None:
        return ""
    return ", ".join(f"{f.name} {f.window_share:.0%} (baseline {f.baseline_share:.0%})" for f in quality.drifting)


def _unix(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _ago(at: float | None, now: float) -> str:
    if not at:
        return "never"
    return f"{_span(now - at)} ago"


def _until(at: float | None, now: float) -> str:
    if not at:
        return "-"
    return "due" if at <= now else f"in {_span(at - now)}"


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


# --- the application ----------------------------------------------------------------------------


def create_app(console: Console) -> Starlette:
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True, default_for_string=True)
    )

    def render(name: str, request: Request, **context: Any) -> HTMLResponse:
        page = templates.get_template(name).render(path=request.url.path, **context)
        return HTMLResponse(page)

    async def home(request: Request) -> Response:
        return RedirectResponse("/sources")

    async def sources(request: Request) -> Response:
        return render("sources.html", request, sources=console.source_rows())

    async def sources_api(request: Request) -> Response:
        return JSONResponse(console.source_rows())

    async def pipeline(request: Request) -> Response:
        return render(
            "pipeline.html",
            request,
            data=console.pipeline_data(),
            refresh_ms=int(console.settings.observability.console_sample_interval_s * 1000),
        )

    async def pipeline_api(request: Request) -> Response:
        return JSONResponse(console.pipeline_data())

    async def dead_letters(request: Request) -> Response:
        wanted = {k: request.query_params.get(k) or None for k in ("stage", "type", "source")}
        items = console.dead_letters.newest()
        choices = {
            "stage": sorted({i.dead_letter.stage for i in items}),
            "type": sorted({i.dead_letter.error_type for i in items}),
            "source": sorted({i.dead_letter.source_name for i in items if i.dead_letter.source_name}),
        }
        shown = [
            i
            for i in items
            if (wanted["stage"] is None or i.dead_letter.stage == wanted["stage"])
            and (wanted["type"] is None or i.dead_letter.error_type == wanted["type"])
            and (wanted["source"] is None or i.dead_letter.source_name == wanted["source"])
        ][:200]
        return render(
            "dead_letters.html",
            request,
            items=[_shown_dead_letter(i) for i in shown],
            total=len(items),
            wanted=wanted,
            choices=choices,
        )

    async def articles(request: Request) -> Response:
        query = (request.query_params.get("q") or "").strip()
        hits: list[dict[str, Any]] = []
        missing = not console.sqlite_path.exists()
        if not missing:
            if query:
                hits = [
                    {
                        "article_id": h.article_id,
                        "title": h.title,
                        "source": h.source_name,
                        "language": h.language,
                        "published_at": h.published_at,
                        "snippet": " ".join(h.snippet.split()),
                    }
                    for h in sqlite_sink.search_articles(console.sqlite_path, query, limit=50)
                ]
            else:
                hits = [
                    {
                        "article_id": a.article_id,
                        "title": a.title,
                        "source": a.source_name,
                        "language": a.language,
                        "published_at": a.published_at,
                        "snippet": None,
                        "written_at": a.written_at,
                    }
                    for a in sqlite_sink.recent_articles(console.sqlite_path, limit=50)
                ]
        return render("articles.html", request, query=query, hits=hits, missing=missing)

    async def article(request: Request) -> Response:
        article_id = request.path_params["article_id"]
        stored = sqlite_sink.stored_row(console.sqlite_path, article_id) if console.sqlite_path.exists() else None
        if stored is None:
            page = render("missing.html", request, article_id=article_id)
            page.status_code = 404
            return page
        record = json.loads(stored.record)
        provenance = record.get("field_sources", {})
        fields = [
            {"name": name, "value": _field_value(record.get(name)), "source": provenance.get(_provenance_key(name), "")}
            for name in (
                "title",
                "canonical_url",
                "published_at",
                "authors",
                "language",
                "summary",
                "tags",
                "image_url",
                "fetched_at",
                "version",
                "updated_at",
                "story_id",
                "copies_seen",
                "flags",
            )
        ]
        detected = record.get("detected_language")
        if detected:
            fields.insert(
                5,
                {
                    "name": "detected_language",
                    "value": f"{detected['code']} ({detected['confidence']:.2f})",
                    "source": "pipeline language enricher",
                },
            )
        fields.insert(6, {"name": "word_count", "value": _field_value(record.get("word_count")), "source": "pipeline"})
        story = record.get("story_id")
        siblings = [
            s
            for s in (sqlite_sink.story_articles(console.sqlite_path, story) if story else [])
            if s.article_id != article_id
        ]
        return render(
            "article.html",
            request,
            article=stored,
            record=record,
            fields=fields,
            paragraphs=[p for p in record.get("body", "").split("\n\n") if p.strip()],
            versions=console.articles.versions(article_id),
            duplicates=console.articles.duplicates_of(article_id),
            siblings=siblings,
            source=record.get("source", {}),
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"service": "console", "alive": True})

    async def readyz(request: Request) -> Response:
        document = console.readiness.document()
        return JSONResponse(document, status_code=200 if document["ready"] else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(console.registry), media_type="text/plain; version=0.0.4")

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/sources", sources),
            Route("/api/sources", sources_api),
            Route("/pipeline", pipeline),
            Route("/api/pipeline", pipeline_api),
            Route("/dead-letters", dead_letters),
            Route("/articles", articles),
            Route("/articles/{article_id}", article),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )
    app.state.console = console
    return app


def _shown_dead_letter(item: Any) -> dict[str, Any]:
    dl = item.dead_letter
    original = dl.original.decode("utf-8", "replace") if dl.original is not None else None
    preview_chars = 600
    return {
        "occurred_at": dl.occurred_at.isoformat(timespec="seconds"),
        "stage": dl.stage,
        "error_type": dl.error_type,
        "error": dl.error,
        "source": dl.source_name,
        "url": dl.source_url,
        "coordinates": f"{dl.topic}[{dl.partition}]@{dl.offset}" if dl.topic is not None else None,
        "dead_letter_topic": f"partition {item.partition}, offset {item.offset}",
        "original": original[:preview_chars] if original is not None else None,
        "original_cut": (original is not None and len(original) > preview_chars) or dl.original_truncated,
        "original_size": dl.original_size,
    }


def _provenance_key(name: str) -> str:
    return {"published_at": "published", "summary": "description", "tags": "topics"}.get(name, name)


def _field_value(value: Any) -> str:
    if value is None or value == []:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def serve_console(settings: Settings, stop: threading.Event) -> None:
    """Run the console until ``stop`` is set (in this thread; ``up`` runs it in its own)."""
    import uvicorn

    console = Console(settings)
    console.start()
    observability = settings.observability
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(console),
            host=observability.console_host,
            port=observability.console_port,
            log_level="warning",
            access_log=False,
        )
    )

    def stop_when_asked() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=stop_when_asked, daemon=True).start()
    log.info("console", extra={"url": f"http://{observability.console_host}:{observability.console_port}/"})
    try:
        server.run()
    finally:
        console.close()
