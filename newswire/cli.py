"""The ``newswire`` command. Each subcommand parses arguments, loads settings once, and
hands typed values to the component that does the work."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from newswire.settings import Settings, load_settings

if TYPE_CHECKING:
    from newswire.wiring import JobServers

log = logging.getLogger("newswire")

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except (ValidationError, FileNotFoundError, ValueError) as error:
        print(f"newswire: invalid settings:\n{error}", file=sys.stderr)
        return 2
    from newswire.logs import configure_logging

    configure_logging(settings.observability.log_level, settings.observability.log_format)
    from newswire.broker import BrokerError
    from newswire.flink import JobServerError

    command: Command = args.handler
    try:
        return command(args, settings)
    except KeyboardInterrupt:
        return 130
    except (NewswireError, BrokerError, JobServerError) as error:
        # These say what to change (a setting, a missing tool): no traceback needed.
        print(f"newswire: {error}", file=sys.stderr)
        return 1


class NewswireError(Exception):
    """A failure the user can act on; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newswire",
        description="Streaming news ingestion: connectors -> Kafka -> Beam pipeline -> sinks.",
        epilog="Settings come from newswire.toml (or $NEWSWIRE_CONFIG) and NEWSWIRE_<SECTION>__<FIELD> variables.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    broker = commands.add_parser("broker", help="run the local single-node Kafka broker (dev and CI)")
    broker_actions = broker.add_subparsers(title="actions", metavar="ACTION", required=True)
    for action, help_text in (
        ("start", "provision Kafka from Maven Central if needed, start it, wait until it answers"),
        ("stop", "stop the broker cleanly"),
        ("status", "say whether it runs, where, and where its log is"),
    ):
        sub = broker_actions.add_parser(action, help=help_text, description=help_text)
        sub.set_defaults(handler=_broker, action=action, command="broker")

    topics = commands.add_parser("topics", help="list topics with end offsets and lag, or create them")
    topics.add_argument("action", nargs="?", choices=["list", "create"], default="list")
    topics.set_defaults(handler=_topics, command="topics")

    schema = commands.add_parser("schema", help="published JSON Schemas of the records")
    schema_actions = schema.add_subparsers(title="actions", metavar="ACTION", required=True)
    export = schema_actions.add_parser("export", help="write JSON Schema files for non-Python consumers")
    export.add_argument("directory", type=Path)
    export.set_defaults(handler=_schema_export, command="schema")

    replay = commands.add_parser("replay", help="publish seed articles to the raw topic")
    replay.add_argument("path", nargs="?", type=Path, help="seed file or directory (default: replay.seeds_dir)")
    replay.add_argument(
        "--rate",
        type=float,
        help="articles per second (default: replay.rate, or replay.loop_rate with --loop; 0 = unpaced)",
    )
    replay.add_argument(
        "--loop", action="store_true", help="replay again and again until interrupted (paced by replay.loop_rate)"
    )
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(handler=_replay, command="replay")

    pipeline = commands.add_parser("pipeline", help="run the Beam pipeline over the raw topic in micro-batches")
    pipeline.add_argument(
        "--until-caught-up", action="store_true", help="consume up to the end offsets seen at start, then exit"
    )
    pipeline.add_argument(
        "--streaming",
        action="store_true",
        help="one unbounded job on a streaming runner (pipeline.runner, e.g. FlinkRunner) instead of micro-batches",
    )
    pipeline.set_defaults(handler=_pipeline, command="pipeline")

    tail = commands.add_parser("tail", help="print records of a topic as they arrive")
    tail.add_argument("topic", help="topic name, or one of: raw, enriched, duplicates, dead_letter")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.add_argument("--json", action="store_true", help="print raw JSON values, one per line")
    tail.add_argument("--limit", type=int, help="stop after this many records")
    tail.add_argument("--timeout", type=float, help="stop after this many idle seconds")
    tail.add_argument("--lang", help="only records in this language (detected or declared)")
    tail.add_argument("--source", help="only records from this source name")
    tail.add_argument("--keyword", help="only records whose title, body or error contains this text")
    tail.add_argument(
        "--since", type=_since, help=f"only records published (or fetched) at or after this time: {_SINCE_FORMATS}"
    )
    tail.set_defaults(handler=_tail, command="tail")

    ingest = commands.add_parser("ingest", help="run the live connectors: poll sources, fetch and clean pages")
    ingest.add_argument("--once", action="store_true", help="poll every enabled source once, drain the fetches, exit")
    ingest.add_argument("--sources", type=Path, help="sources.yaml to use (default: ingest.sources_file)")
    ingest.add_argument("--workers", type=int, help="page-fetch worker processes (default: ingest.fetch_workers)")
    ingest.set_defaults(handler=_ingest, command="ingest")

    dedup = commands.add_parser("dedup", help="inspect deduplication decisions")
    dedup_actions = dedup.add_subparsers(title="actions", metavar="ACTION", required=True)
    explain = dedup_actions.add_parser(
        "explain", help="similarity of two articles at each dedup layer, and what the pipeline decided"
    )
    explain.add_argument("first", help="article id")
    explain.add_argument("second", help="article id")
    explain.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    explain.set_defaults(handler=_dedup_explain, command="dedup")

    search = commands.add_parser("search", help="full-text search of the articles in the SQLite sink")
    search.add_argument("query", help="words that must all occur, e.g. 'Sudani Tehran'")
    search.add_argument("--lang", help="only articles in this language (ISO 639-1, e.g. en)")
    search.add_argument("--source", help="only articles from this source name")
    search.add_argument(
        "--since", type=_since, help=f"only articles published (or fetched) at or after this time: {_SINCE_FORMATS}"
    )
    search.add_argument("--limit", type=int, default=20)
    search.set_defaults(handler=_search, command="search")

    up = commands.add_parser(
        "up", help="the service on its embedded defaults: broker, topics, seed replay, continuous pipeline"
    )
    up.add_argument("--once", action="store_true", help="stop after the first catch-up instead of running on")
    up.set_defaults(handler=_up, command="up")

    dead_letters = commands.add_parser(
        "dead-letters", help="inspect dead letters and send chosen ones back through the raw topic"
    )
    dead_letter_actions = dead_letters.add_subparsers(title="actions", metavar="ACTION", required=True)
    for action, help_text in (
        ("list", "dead letters newest first, one per dead_letter_id, filtered by stage, type, source and time"),
        ("replay", "send chosen dead letters' originals back to the raw topic (after fixing their cause)"),
    ):
        sub = dead_letter_actions.add_parser(action, help=help_text, description=help_text)
        if action == "replay":
            sub.add_argument("ids", nargs="*", help="dead letter ids (or unique prefixes); or choose with filters")
            sub.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
        sub.add_argument("--stage", help="only this stage, e.g. decode, publish, fetch")
        sub.add_argument("--type", dest="error_type", help="only this error type, e.g. too_large, invalid_record")
        sub.add_argument("--source", help="only this source name (or part of its URL)")
        sub.add_argument("--since", type=_iso_time, help="only those that occurred at or after this ISO date/time")
        sub.add_argument("--until", type=_iso_time, help="only those that occurred before this ISO date/time")
        if action == "list":
            sub.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
        sub.set_defaults(handler=_dead_letters, action=action, command="dead-letters")
    show_letter = dead_letter_actions.add_parser("show", help="one dead letter: its error, coordinates, original")
    show_letter.add_argument("id", help="dead letter id (or a unique prefix)")
    show_letter.set_defaults(handler=_dead_letters, action="show", command="dead-letters")
    console = commands.add_parser(
        "console", help="the read-only web console: sources, pipeline, dead letters, articles; and quality drift"
    )
    console.set_defaults(handler=_console, command="console")

    show = commands.add_parser("settings", help="print the effective settings (secrets masked)")
    show.set_defaults(handler=_settings, command="settings")
    return parser


_SINCE_FORMATS = "YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS] (UTC unless an offset such as +02:00 or Z is given)"


def _since(value: str) -> str:
    """A ``--since`` value as the UTC ISO prefix the stored times compare against as text.

    Records are compared as ISO strings, so a value that is not a date would silently match
    everything or nothing; it is refused instead, as invalid settings are.
    """
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date or time; use {_SINCE_FORMATS}") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    # No offset suffix: "...T10:00:00" sorts before both "...T10:00:00Z" and "...T10:00:00+00:00".
    return when.replace(tzinfo=None).isoformat()


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from newswire.broker import BrokerError, LocalBroker

    broker = LocalBroker(settings.broker, settings.topics, settings.limits)
    try:
        if args.action == "start":
            info = broker.start()
            print(f"kafka broker running at {info.bootstrap} (pid {info.pid}); log: {info.log_path}")
        elif args.action == "stop":
            stopped = broker.stop()
            print("kafka broker stopped" if stopped else "kafka broker was not running")
        else:
            status = broker.status()
            print(status.describe())
            return 0 if status.running else 3
    except BrokerError as error:
        raise NewswireError(str(error)) from error
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from newswire.topics import describe_topics, ensure_topics

    if args.action == "create":
        created = ensure_topics(settings.kafka, settings.topics, settings.limits, report=print)
        print(f"topics ready: {', '.join(created)}")
        return 0
    for line in describe_topics(settings.kafka, settings.topics, consumer_group=settings.pipeline.consumer_group):
        print(line)
    return 0


def _schema_export(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.export import write_json_schemas

    for path in write_json_schemas(args.directory):
        print(path)
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.base import run_source
    from connectors.seeds import SeedSource
    from newswire import wiring

    path = args.path or settings.replay.seeds_dir
    rate = _replay_rate(args, settings)
    try:
        source = SeedSource(path, max_file_bytes=settings.limits.max_seed_file_bytes)
        source.files()
    except FileNotFoundError as error:
        raise NewswireError(str(error)) from error
    stop = _stop_on_signals()
    with wiring.publisher(settings) as publisher:
        passes = 0
        while not stop.is_set():
            totals = run_source(source, publisher, rate=rate, show_progress=not args.no_progress, stop=stop)
            passes += 1
            log.info("replay pass done", extra={"published": totals.published, "rejected": totals.rejected})
            for rejected in totals.rejections:
                print(f"skipped {rejected.source_name}: {rejected.reason}", file=sys.stderr)
            print(f"replayed {totals.published} article(s), skipped {totals.rejected} to {settings.topics.raw}")
            if not args.loop:
                break
    return 0


def _replay_rate(args: argparse.Namespace, settings: Settings) -> float:
    """Articles per second: --rate, else replay.rate, and a loop never unpaced unless asked."""
    if args.rate is not None:
        if args.rate < 0:
            raise NewswireError("--rate must be 0 (unpaced) or positive")
        return float(args.rate)
    if args.loop and settings.replay.rate == 0:
        return settings.replay.loop_rate
    return settings.replay.rate


def _pipeline(args: argparse.Namespace, settings: Settings) -> int:
    if args.streaming:
        return _stream_pipeline(args, settings)
    _run_pipeline(settings, until_caught_up=args.until_caught_up, stop=_stop_on_signals())
    return 0


def _stream_pipeline(args: argparse.Namespace, settings: Settings) -> int:
    from newswire import wiring

    if args.until_caught_up:
        raise NewswireError("--streaming runs until stopped; --until-caught-up is for micro-batches")
    from newswire.monitoring import PipelineObservers

    with wiring.JobServers() as job_servers:
        try:
            service = wiring.streaming_service(settings, job_servers)
        except ValueError as error:  # e.g. a runner that cannot stream
            raise NewswireError(f"cannot stream: {error}") from None
        # The job's own counters stay in the runner (Flink's UI); here: /healthz, /readyz and the lag.
        observers = PipelineObservers.start(settings, serve=True)
        try:
            state = service.run(_stop_on_signals())
        finally:
            observers.close()
    print(f"pipeline: streaming job ended in state {state}", file=sys.stderr)
    return 0


def _run_pipeline(
    settings: Settings,
    *,
    until_caught_up: bool,
    stop: threading.Event,
    observers: Any = None,
    job_servers: JobServers | None = None,
) -> None:
    """``observers``: the process's ``PipelineObservers`` when it outlives this run (``up``
    runs a catch-up, then the continuous pipeline: both count into the one endpoint);
    ``job_servers`` likewise lets both share one job server (if the runner needs one),
    else this run has its own."""
    from newswire import wiring
    from newswire.monitoring import PipelineObservers
    from newswire.topics import TopicError, topics_below_limits

    try:  # a topic set smaller than the limits would refuse articles they allow: say so at start
        for problem in topics_below_limits(settings.kafka, settings.topics, settings.limits):
            log.warning(problem)
    except TopicError as error:
        log.warning("could not check the topics' record limits", extra={"error": str(error)})
    with contextlib.ExitStack() as owned:
        if job_servers is None:
            job_servers = owned.enter_context(wiring.JobServers())
        own = observers is None
        if observers is None:
            observers = PipelineObservers.start(settings, serve=not until_caught_up)
        service = wiring.micro_batch_service(
            settings, job_servers, on_batch=observers.observe_batch, health=observers.readiness.report
        )
        try:
            reports = service.run(until_caught_up=until_caught_up, stop=stop)
        finally:
            service.close()
            if own:
                observers.close()
    consumed = sum(r.records for r in reports)
    print(f"pipeline: {len(reports)} batch(es), {consumed} record(s) consumed", file=sys.stderr)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from connectors.ingest import FetchEvent, PollReport
    from connectors.sources import SourcesFileError, load_sources
    from newswire import wiring
    from newswire.monitoring import IngestObservers

    try:
        sources = load_sources(args.sources or settings.ingest.sources_file)
    except SourcesFileError as error:
        raise NewswireError(str(error)) from error
    # Fetch events reach this process from every worker (they are sent home), so one registry counts them all.
    observers = IngestObservers.start(settings, serve=not args.once)
    progress = tqdm(desc="pages", unit="page", disable=not sys.stderr.isatty(), total=0)

    def polled(report: PollReport) -> None:
        now = time.time()
        observers.metrics.polled(
            report.source,
            report.outcome,
            report.entries_queued,
            next_due=now + report.next_poll_in_s,
            interval_s=report.next_poll_in_s,
            now=now,
        )
        progress.total = (progress.total or 0) + report.entries_queued
        progress.refresh()

    def fetched(event: FetchEvent) -> None:
        observers.fetch.fetched(event)
        if event.final:
            progress.update(1)
        progress.set_postfix_str(f"{event.source}: {event.outcome}", refresh=False)

    service = wiring.ingest_service(
        settings,
        sources,
        workers=args.workers,
        on_poll=polled,
        on_fetch=fetched,
        health=observers.readiness.report,
    )
    observers.metrics.retries_pending.set_function(lambda: service.status().retries_pending)
    try:
        report = service.run(once=args.once, stop=_stop_on_signals())
    finally:
        progress.close()
        observers.close()
    if args.once:
        _print_outcomes(report.fetches.as_dict())
    return 0


def _print_outcomes(counts: dict[str, dict[str, int]]) -> None:
    if not counts:
        print("ingest: no pages fetched")
    for source, outcomes in sorted(counts.items()):
        summary = ", ".join(f"{outcome}={n}" for outcome, n in sorted(outcomes.items()))
        print(f"ingest: {source}: {summary}")


def _dedup_explain(args: argparse.Namespace, settings: Settings) -> int:
    from newswire import wiring
    from newswire.stored_articles import find_article
    from pipeline.dedup.explain import explain

    config = wiring.dedup_config(settings)
    articles = []
    for article_id in (args.first, args.second):
        article = find_article(settings, article_id)
        if article is None:
            raise NewswireError(
                f"article {article_id} is neither in the SQLite sink nor on the raw topic {settings.topics.raw}"
            )
        articles.append(article)
    index = config.index.open()
    try:
        explanation = index.read(lambda view: explain(articles[0], articles[1], config, view))
    finally:
        index.close()
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(explanation.lines()))
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.sinks.sqlite import search_articles

    path = settings.sinks.sqlite_path
    if not path.exists():
        raise NewswireError(f"no SQLite sink at {path.resolve()} yet; run the pipeline first")
    hits = search_articles(path, args.query, language=args.lang, source=args.source, since=args.since, limit=args.limit)
    for hit in hits:
        snippet = " ".join(hit.snippet.split())
        print(f"{hit.article_id}  [{hit.language or '?'}] {hit.published_at or '-'}  {hit.title}\n    {snippet}")
    if not hits:
        print("no matches", file=sys.stderr)
    return 0 if hits else 1


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from newswire.tail import TailFilter, tail_topic

    names = settings.topics.model_dump()
    topic = names.get(args.topic, args.topic)
    stop = _stop_on_signals()
    for line in tail_topic(
        settings.kafka,
        topic,
        from_beginning=args.from_beginning,
        as_json=args.json,
        limit=args.limit,
        idle_timeout_s=args.timeout,
        stop=stop,
        only=TailFilter(language=args.lang, source=args.source, keyword=args.keyword, since=args.since),
    ):
        print(line, flush=True)
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.base import run_source
    from connectors.seeds import SeedSource
    from newswire import wiring
    from newswire.broker import BrokerError, LocalBroker
    from newswire.topics import ensure_topics

    try:
        info = LocalBroker(settings.broker, settings.topics, settings.limits).start()
    except BrokerError as error:
        raise NewswireError(str(error)) from error
    print(f"kafka broker running at {info.bootstrap}; log: {info.log_path}")
    ensure_topics(settings.kafka, settings.topics, settings.limits, report=print)
    with wiring.publisher(settings) as publisher:
        totals = run_source(
            SeedSource(settings.replay.seeds_dir, max_file_bytes=settings.limits.max_seed_file_bytes),
            publisher,
            rate=settings.replay.rate,
        )
    print(f"replayed {totals.published} seed article(s) to {settings.topics.raw}")
    from newswire.monitoring import PipelineObservers

    stop = _stop_on_signals()
    # One endpoint for the whole run: batches of the catch-up count where /metrics is scraped.
    observers = PipelineObservers.start(settings, serve=not args.once)
    if not args.once:
        from newswire.console.app import serve_console

        threading.Thread(target=serve_console, args=(settings, stop), name="newswire-console", daemon=True).start()
    try:
        with wiring.JobServers() as job_servers:  # one job server (if the runner needs one) for both runs
            _run_pipeline(settings, until_caught_up=True, stop=stop, observers=observers, job_servers=job_servers)
            running_on = not args.once and not stop.is_set()
            print(_up_summary(settings, info.bootstrap, running_on=running_on, metrics_port=observers.port))
            if running_on:
                print("pipeline running continuously; new records on the raw topic flow through.", flush=True)
                _run_pipeline(settings, until_caught_up=False, stop=stop, observers=observers, job_servers=job_servers)
    finally:
        observers.close()
    return 0


def _console(args: argparse.Namespace, settings: Settings) -> int:
    from newswire.console.app import serve_console

    observability = settings.observability
    print(f"console: http://{observability.console_host}:{observability.console_port}/", file=sys.stderr)
    serve_console(settings, _stop_on_signals())
    return 0


def _up_summary(settings: Settings, bootstrap: str, *, running_on: bool, metrics_port: int | None = None) -> str:
    """Where the output is; what to stop only if something still runs (the pipeline, with
    ``--once`` just the broker)."""
    lines = [
        "",
        "Output:",
        f"  SQLite:      {settings.sinks.sqlite_path.resolve()}  (table: articles)",
        f"  JSON Lines:  {settings.sinks.jsonl_path.resolve()}",
        f"  Kafka topic: {settings.topics.enriched} at {bootstrap}",
        "Subscribe:     newswire tail enriched --from-beginning",
    ]
    if running_on:
        observability = settings.observability
        port = metrics_port or observability.metrics_port
        lines.append(f"Metrics:       http://{observability.metrics_host}:{port}/metrics (and /healthz, /readyz)")
        lines.append(f"Console:       http://{observability.console_host}:{observability.console_port}/")
        lines.append("Stop:          Ctrl-C here, then `newswire broker stop`")
    else:
        lines.append("Stop:          the broker still runs: `newswire broker stop`")
    return "\n".join(lines)


def _iso_time(text: str) -> datetime:
    """An ISO 8601 date or date and time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date or time; use e.g. 2026-12-01 or 2026-12-01T09:30:00+00:00"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    from newswire.dead_letters import DeadLetterFilter, Replayed, list_lines, read_dead_letters, replay, show_lines

    found = read_dead_letters(settings.kafka, settings.topics.dead_letter)
    if args.action == "show":
        try:
            print("\n".join(show_lines(found.find(args.id))))
        except LookupError as error:
            raise NewswireError(str(error)) from None
        return 0
    only = DeadLetterFilter(
        stage=args.stage, error_type=args.error_type, source=args.source, since=args.since, until=args.until
    )
    if args.action == "list":
        matching = found.matching(only)
        for line in list_lines(matching[: args.limit]):
            print(line)
        shown = min(len(matching), args.limit)
        note = f", {found.undecodable} record(s) that are not dead letters" if found.undecodable else ""
        summary = f"{shown} of {len(matching)} dead letter(s) shown ({len(found.letters)} on the topic{note})"
        print(summary, file=sys.stderr)
        return 0
    if not args.ids and not only.active():
        raise NewswireError("choose what to replay: give dead letter ids, or filters such as --stage/--type/--since")
    try:
        chosen = [found.find(i) for i in args.ids] if args.ids else []
    except LookupError as error:
        raise NewswireError(str(error)) from None
    chosen = [c for c in chosen if only.accepts(c.letter)] if args.ids else found.matching(only)
    outcomes = replay(
        chosen, kafka=settings.kafka, topics=settings.topics, limits=settings.limits, dry_run=args.dry_run
    )
    for outcome in outcomes:
        print(outcome.line())
    refused = sum(1 for o in outcomes if o.outcome is Replayed.REFUSED)
    print(f"{len(outcomes) - refused} of {len(outcomes)} dead letter(s) {'would be ' if args.dry_run else ''}replayed")
    return 1 if refused else 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.model_dump(mode="json"), indent=2, default=str))
    return 0


def _stop_on_signals() -> threading.Event:
    """First SIGINT/SIGTERM asks the work in flight to finish and stop; a second SIGINT aborts."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning(
            "stop requested; finishing the work in flight",
            extra={"signal": signal.Signals(signum).name, "at": datetime.now(UTC).isoformat()},
        )
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop


if __name__ == "__main__":
    sys.exit(main())
