"""The live ingest service: ``IngestService.run(stop)``, the peer of the pipeline's ``MicroBatchService``.

It owns the poll loop (a poller thread that polls due sources and queues due retries), and
the fetch workers: with one worker, a thread of this process sharing the poller's HTTP
client (so one politeness budget and one robots.txt cache cover every request the process
makes); with several, worker processes it starts, watches and restarts if one dies (the
task that killed it is dead-lettered after ``ingest.max_task_deliveries``). Every process
shares per-host politeness and robots.txt through the host ledger, and fetch tasks are
keyed by host, so one host is fetched by one worker at a time (``connectors.http.host_ledger``).

What the shell attaches: ``on_poll(PollReport)`` and ``on_fetch(FetchEvent)`` are called
in this process for every poll and every handled task, and ``on_http(FetchResult)`` for every
HTTP fetch (feeds, sitemaps, pages; the body left out), including those of worker processes
(they send their events home on a queue; ``fetch_worker_process`` takes any picklable
``on_event`` a child may call itself); ``health(check, ok, detail)`` is called on each change
of state of a dependency (``"broker"``); ``status()`` gives the schedule's gauges (entries
in flight, retries waiting, next poll and retry due).

It must never exit because a source, a page or a dependency failed, and never lose an
entry: see ``schedule`` and ``worker`` for how.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.http import FetchResult, HttpClient
from connectors.http.limits import FetchSettings
from connectors.ingest.config import IngestConfig
from connectors.ingest.fetcher import PageFetcher
from connectors.ingest.poller import Poller, PollReport
from connectors.ingest.schedule import Schedule
from connectors.ingest.worker import FetchEvent, FetchWorker, HealthReport, OutcomeCounts, TasksDrained
from connectors.page_archive import PageArchive
from connectors.seen_store import SeenStore
from connectors.sources import SourceConfig

log = logging.getLogger(__name__)

# Waits of the poll loop after Kafka refused its tasks, doubling up to the last.
_OUTAGE_WAITS_S = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class IngestReport:
    """What one run did: outcomes per source for polls and for fetch tasks."""

    polls: OutcomeCounts = field(default_factory=OutcomeCounts)
    fetches: OutcomeCounts = field(default_factory=OutcomeCounts)
    retries_scheduled: int = 0
    retry_after_honoured: int = 0
    worker_restarts: int = 0


@dataclass(frozen=True)
class IngestStatus:
    """Gauges of the schedule, for metrics and health."""

    entries_in_flight: int
    # Page fetches waiting for their retry, and sources whose polls are backing off.
    retries_waiting: int
    polls_backing_off: int
    next_poll_at: float | None
    next_retry_at: float | None

    @property
    def retries_pending(self) -> int:
        return self.retries_waiting + self.polls_backing_off


class _Health:
    """Passes on a dependency's state only when it changes, with one log line per change
    (the callback's, when one is given: ``newswire.health.Readiness.report`` logs itself)."""

    def __init__(self, report: HealthReport | None) -> None:
        self._report = report
        self._state: dict[str, bool] = {}
        self._lock = threading.Lock()

    def __call__(self, check: str, ok: bool, detail: str) -> None:
        with self._lock:
            previous = self._state.get(check)
            if previous == ok:
                return
            self._state[check] = ok
        if self._report is not None:
            self._report(check, ok, detail)
        elif previous is not None or not ok:
            (log.info if ok else log.warning)(f"{check} {'healthy' if ok else 'not healthy'}", extra={"detail": detail})


class IngestService:
    def __init__(
        self,
        config: IngestConfig,
        sources: tuple[SourceConfig, ...],
        fetch_settings: FetchSettings,
        *,
        workers: int = 1,
        health: HealthReport | None = None,
        on_poll: Callable[[PollReport], None] | None = None,
        on_fetch: Callable[[FetchEvent], None] | None = None,
        on_http: Callable[[FetchResult], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers} (--workers, ingest.fetch_workers)")
        self._config = config
        self._sources = tuple(s for s in sources if s.enabled)
        self._fetch_settings = fetch_settings
        self._workers = workers
        self._health = _Health(health)
        self._on_poll = on_poll
        self._on_fetch = on_fetch
        self._on_http = on_http
        self._schedule: Schedule | None = None
        self._poller: Poller | None = None
        self.report = IngestReport()
        self._report_lock = threading.Lock()

    def status(self) -> IngestStatus:
        schedule, poller = self._schedule, self._poller
        if schedule is None or poller is None:
            return IngestStatus(0, 0, 0, None, None)
        try:
            next_poll = poller.next_due()
            return IngestStatus(
                schedule.pending(),
                schedule.waiting(),
                schedule.polls_backing_off(),
                next_poll if next_poll != float("inf") else None,
                schedule.next_retry_at(),
            )
        except sqlite3.ProgrammingError:  # asked while the run was closing its schedule
            return IngestStatus(0, 0, 0, None, None)

    def run(self, *, once: bool = False, stop: threading.Event) -> IngestReport:
        """Poll and fetch until ``stop`` is set; with ``once``, poll every source once and return
        when every entry it queued has a final outcome (retries included)."""
        config = self._config
        store = SeenStore(config.state_file)
        schedule = self._schedule = Schedule(config.state_file)
        http = HttpClient(self._fetch_settings, shared_state=config.host_ledger_file, on_result=self._http_fetched)
        try:
            with config.publisher() as publisher:
                poller = self._poller = Poller(
                    config, self._sources, http, store, schedule, publisher, on_poll=self._polled
                )
                workers_stop = threading.Event()
                if once:
                    reports = poller.poll_all(stop.is_set)
                    unanswered = {r.source for r in reports if r.retrying}
                    drained = TasksDrained(config.consumer_config, config.fetch_topic, config.fetch_group)
                    loop = threading.Thread(
                        target=self._finish_loop, args=(poller, schedule, drained, unanswered, stop, workers_stop),
                        name="newswire-poller", daemon=True,
                    )  # fmt: skip
                else:
                    drained = None
                    loop = threading.Thread(
                        target=self._poll_loop, args=(poller, stop, workers_stop), name="newswire-poller", daemon=True
                    )
                loop.start()
                try:
                    if self._workers == 1:
                        self._run_worker_here(http, schedule, workers_stop)
                    else:
                        self._run_worker_processes(workers_stop)
                finally:
                    workers_stop.set()
                    loop.join(timeout=60)
                    if drained is not None:
                        drained.close()
        finally:
            self._poller = None
            self._schedule = None
            schedule.close()
            http.close()
            store.close()
        return self.report

    def _polled(self, report: PollReport) -> None:
        with self._report_lock:
            self.report.polls.add(report.source, report.outcome)
        if self._on_poll is not None:
            self._on_poll(report)

    def _http_fetched(self, result: FetchResult) -> None:
        if self._on_http is not None:
            self._on_http(result)

    def _fetched(self, event: FetchEvent) -> None:
        with self._report_lock:
            self.report.fetches.add(event.source, event.outcome)
            if not event.final:
                self.report.retries_scheduled += 1
                self.report.retry_after_honoured += event.retry_after_honoured
        if self._on_fetch is not None:
            self._on_fetch(event)

    def _poll_loop(self, poller: Poller, stop: threading.Event, workers_stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                poller.release_due_retries(time.time())
                poller.poll_due(time.time(), stop.is_set)
                wake = min(poller.next_due(), time.time() + self._config.schedule_check_interval_s)
            except Exception as error:  # Kafka away (or a bug): back off, never spin, never exit
                if failures == 0:
                    self._health("broker", False, f"queueing fetch tasks failed: {error!r}")
                log.debug("poll loop failed", exc_info=True)
                stop.wait(_OUTAGE_WAITS_S[min(failures, len(_OUTAGE_WAITS_S) - 1)])
                failures += 1
                continue
            if failures:
                failures = 0
                self._health("broker", True, "fetch tasks are queued again")
            stop.wait(max(0.05, wake - time.time()))
        workers_stop.set()

    def _finish_loop(
        self,
        poller: Poller,
        schedule: Schedule,
        drained: TasksDrained,
        unanswered: set[str],
        stop: threading.Event,
        workers_stop: threading.Event,
    ) -> None:
        """``--once``: poll again the sources that failed transiently, on their backoff, until they
        answer or are given up (``ingest.poll_gave_up_after``); queue due retries; until nothing
        is in flight and every task is committed."""
        gave_up_after = self._config.retry.poll_gave_up_after
        while not stop.is_set() and not workers_stop.is_set():
            try:
                poller.release_due_retries(time.time())
                for source in poller.due(time.time()):
                    if source.name in unanswered:
                        report = poller.poll(source)
                        if not report.retrying or report.failures >= gave_up_after:
                            unanswered.discard(source.name)
                pending = schedule.pending()
                if not unanswered and pending == 0 and drained():
                    break
                if pending > schedule.waiting() and drained():
                    drained.refresh()
                    if drained() and (orphans := schedule.requeue_orphans(time.time())):
                        # Every task was committed, yet these have no outcome: never hang on them.
                        log.warning("entries in flight had no fetch task left; queued again", extra={"n": orphans})
            except Exception as error:
                self._health("broker", False, f"queueing retries failed: {error!r}")
            stop.wait(min(self._config.schedule_check_interval_s, 0.25))
        workers_stop.set()

    def _run_worker_here(self, http: HttpClient, schedule: Schedule, stop: threading.Event) -> None:
        config = self._config
        archive = PageArchive(config.archive_dir, max_file_bytes=config.archive_max_file_bytes)
        try:
            with config.publisher() as publisher:
                worker = FetchWorker(
                    config,
                    PageFetcher(config, http, archive),
                    publisher,
                    schedule,
                    on_event=self._fetched,
                    health=self._health,
                )
                try:
                    worker.run(stop)
                finally:
                    worker.close()
        finally:
            archive.close()

    def _run_worker_processes(self, stop: threading.Event) -> None:
        context = multiprocessing.get_context("spawn")
        shared_stop = context.Event()
        events: Any = context.Queue()
        args = (self._config, self._fetch_settings, shared_stop, _QueueSender(events))

        def start() -> Any:
            process = context.Process(target=_fetch_child, args=args, daemon=True, name="newswire-fetch-worker")
            process.start()
            return process

        processes = [start() for _ in range(self._workers)]
        # When each dead worker is replaced: at once the first time, then backing off, so a
        # worker that cannot start (Kafka away) is not restarted in a tight loop.
        restart_at: dict[int, float] = {}
        deaths = 0
        try:
            while True:
                self._drain(events, timeout=0.2)
                if stop.is_set():
                    shared_stop.set()
                    break
                now = time.monotonic()
                for number, process in enumerate(processes):
                    if process.is_alive() or process.exitcode is None:
                        continue
                    if number not in restart_at:
                        # A worker that died (a crash, a kill) is replaced; its task is redelivered and counted.
                        log.error("fetch worker process died", extra={"exit_code": process.exitcode})
                        restart_at[number] = now + min(30.0, 0.5 * 2**deaths) if deaths else now
                        deaths += 1
                    if restart_at[number] <= now:
                        del restart_at[number]
                        self.report.worker_restarts += 1
                        processes[number] = start()
        finally:
            shared_stop.set()
            deadline = time.monotonic() + 60
            while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
                self._drain(events, timeout=0.1)
            for process in processes:
                if process.is_alive():
                    process.kill()
                process.join(timeout=5)
            self._drain(events, timeout=0.0)

    def _drain(self, events: Any, *, timeout: float) -> None:
        try:
            message = events.get(timeout=timeout) if timeout else events.get_nowait()
            while True:
                kind, payload = message
                if kind == "fetch":
                    self._fetched(payload)
                elif kind == "http":
                    self._http_fetched(payload)
                else:
                    self._health(*payload)
                message = events.get_nowait()
        except queue.Empty:
            return


class _QueueSender:
    """The hook a worker process calls: sends its events to the service's process."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def __call__(self, event: FetchEvent) -> None:
        self._events.put(("fetch", event))

    def http(self, result: FetchResult) -> None:
        # Only what metrics read travels: the body and headers stay in the worker.
        self._events.put(("http", replace(result, body=b"", text=None, headers={})))

    def health(self, check: str, ok: bool, detail: str) -> None:
        self._events.put(("health", (check, ok, detail)))


def _fetch_child(config: IngestConfig, fetch_settings: FetchSettings, stop: Any, sender: _QueueSender) -> None:
    # Workers stop through the shared event once the parent has been asked to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fetch_worker_process(config, fetch_settings, stop, on_event=sender, health=sender.health, on_http=sender.http)


def fetch_worker_process(
    config: IngestConfig,
    fetch_settings: FetchSettings,
    stop: Any,
    *,
    on_event: Callable[[FetchEvent], None] | None = None,
    health: HealthReport | None = None,
    on_http: Callable[[FetchResult], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Entry point of one fetch-worker process. Everything arrives as picklable arguments; it
    builds its own HTTP client (sharing politeness through the host ledger), archive, schedule
    connection and Kafka clients. ``on_event`` is the hook a child calls for each task,
    ``on_http`` for each HTTP fetch."""
    http = HttpClient(fetch_settings, shared_state=config.host_ledger_file, on_result=on_http)
    archive = PageArchive(config.archive_dir, max_file_bytes=config.archive_max_file_bytes)
    schedule = Schedule(config.state_file)
    try:
        with config.publisher() as publisher:
            worker = FetchWorker(
                config, PageFetcher(config, http, archive), publisher, schedule, on_event=on_event, health=health
            )
            try:
                counts = worker.run(stop)
            finally:
                worker.close()
    finally:
        schedule.close()
        archive.close()
        http.close()
    return counts.as_dict()
