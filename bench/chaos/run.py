"""One chaos run: real services, real outages, then the accounting.

``run_chaos(plan)`` starts a private broker, a PostgreSQL cluster and the loopback
publishers, runs `newswire ingest` and `newswire pipeline` under the supervisor, writes
poison in waves, and works through the plan's events in order (SIGKILL the pipeline, a host
down, the broker stopped, a fetch worker SIGKILLed, PostgreSQL stopped, ...). Each event
fires once the sinks hold a share of the articles, or at a fallback time if the run stalls,
so a small run and a stuck run both reach the end. Every wait has a deadline; the run stops
itself, stops every process it started and returns what it measured. It never judges: the
report holds figures and the targets they are read against.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from bench.chaos.accounting import (
    DeadLetterFigures,
    Outputs,
    PoisonOutcome,
    SinkFigures,
    dead_letter_figures,
    poison_outcomes,
    read_outputs,
    sink_figures,
    sqlite_count,
    sqlite_ids,
)
from bench.chaos.poison import Poison, PoisonWriter, poison_records, refuse_marked_articles
from bench.chaos.publishers import PAGE_PREFIX, HostFigures, Publishers
from bench.chaos.services import Exit, Service, Supervisor
from newswire.broker import LocalBroker
from newswire.settings import KafkaSettings, TopicSettings
from newswire.testing.deployment import newswire_environment, private_broker, run_topics
from newswire.testing.http_server import Reply
from newswire.testing.postgres import PostgresServer, postgres_cluster
from newswire.topics import client_config, ensure_topics
from pipeline.sinks.postgres import PostgresSink

TABLE = "articles"


@dataclass(frozen=True)
class Event:
    """One thing done to the service: fires at ``share`` of the articles arrived, or ``fallback_s`` into the run."""

    name: str
    share: float
    fallback_s: float
    duration_s: float = 0.0


@dataclass(frozen=True)
class ChaosPlan:
    articles: int = 10_000
    hosts: int = 20
    poison_share: float = 0.01
    transient_share: float = 0.012
    failing_feeds: int = 2
    fetch_workers: int = 2
    pipeline_kills: int = 2
    fetch_worker_kills: int = 1
    broker_outage_s: float = 20.0
    postgres_outage_s: float = 20.0
    host_outage_s: float = 25.0
    # The whole run, start to accounting, stops by this.
    deadline_s: float = 14 * 60.0
    # After the last event, a run with no progress at all for this long is over.
    settle_s: float = 90.0
    read_timeout_s: float = 1.0
    seed: int = 11

    def events(self) -> list[Event]:
        """The events in the order they happen; each waits for the one before it."""
        events = [Event("poison wave 1", 0.0, 0.0)]
        kills = [Event(f"SIGKILL pipeline #{n + 1}", share, at) for n, (share, at) in
                 enumerate([(0.12, 60.0), (0.7, 240.0), (0.85, 280.0)][: self.pipeline_kills])]  # fmt: skip
        middle = []
        if kills:
            middle.append(kills[0])
        if self.host_outage_s:
            middle.append(Event("host down", 0.2, 80.0, self.host_outage_s))
        if self.broker_outage_s:
            middle.append(Event("broker stopped", 0.3, 110.0, self.broker_outage_s))
        middle.append(Event("poison wave 2", 0.35, 140.0))
        middle += [Event(f"SIGKILL fetch worker #{n + 1}", 0.45, 160.0) for n in range(self.fetch_worker_kills)]
        if self.postgres_outage_s:
            middle.append(Event("PostgreSQL stopped", 0.55, 190.0, self.postgres_outage_s))
        middle += kills[1:]
        middle.append(Event("poison wave 3", 0.8, 270.0))
        return events + middle


@dataclass
class EventRecord:
    name: str
    started_s: float
    ended_s: float
    detail: str = ""


@dataclass
class ChaosReport:
    plan: ChaosPlan
    expected: int
    sinks: list[SinkFigures]
    behind_failure: int
    behind_failure_missing: dict[str, int]
    poison: list[PoisonOutcome]
    dead_letters: list[DeadLetterFigures]
    article_dead_letters: int
    undecodable_dead_letters: int
    raw_repeats: int
    duplicates_topic: int
    hosts: list[HostFigures]
    events: list[EventRecord]
    exits: list[Exit]
    slow_stops: list[str]
    problem_lines: dict[str, Counter[str]]
    longest_stall_s: float
    longest_stall_at_s: tuple[float, float]
    # When the SQLite sink last gained an article, seconds into the run.
    last_arrival_s: float
    wall_s: float
    finished: str
    # Worker processes `newswire ingest` ran at the end (after one was SIGKILLed: was it replaced?).
    fetch_workers_at_end: int
    problems: list[str] = field(default_factory=list)

    def targets(self) -> list[tuple[str, str, bool]]:
        """(target, measured, met) for every promise the run checks."""
        lost = max((s.lost for s in self.sinks), default=0)
        doubled = max((s.doubled for s in self.sinks), default=0)
        poison_ok = sum(p.ok for p in self.poison)
        given = sum(h.retry_after_given for h in self.hosts)
        honoured = sum(h.retry_after_honoured for h in self.hosts)
        missing_behind = max(self.behind_failure_missing.values(), default=0)
        return [
            ("0 articles lost (in any sink)", f"{lost} in the worst sink", lost == 0),
            ("0 articles doubled (in any sink)", f"{doubled} in the worst sink", doubled == 0),
            (
                "every poison record handled as expected",
                f"{poison_ok}/{len(self.poison)}",
                poison_ok == len(self.poison),
            ),
            (
                "every article behind a transient failure published",
                f"{self.behind_failure - missing_behind}/{self.behind_failure}",
                missing_behind == 0,
            ),
            ("every 429's Retry-After honoured", f"{honoured}/{given}", honoured == given),
            ("no service process exited on its own", f"{len(self.exits)} exits", not self.exits),
        ]

    @property
    def passed(self) -> bool:
        return all(met for _, _, met in self.targets()) and not self.problems


class _Progress:
    """Samples what shows the service moving: articles in SQLite, records on the raw and dead-letter topics."""

    def __init__(self, kafka: KafkaSettings, topics: TopicSettings, sqlite_path: Path) -> None:
        self._sqlite_path = sqlite_path
        self._consumer = KafkaConsumer(
            **{**client_config(kafka), "request_timeout_ms": 8_000}, group_id=None, enable_auto_commit=False
        )
        self._partitions = [
            TopicPartition(topic, p) for topic in (topics.raw, topics.dead_letter) for p in range(topics.partitions)
        ]
        self.articles = 0
        self.records = 0
        self.last_change = time.monotonic()
        # (monotonic time, articles) whenever the article count changes.
        self.history: list[tuple[float, int]] = [(time.monotonic(), 0)]

    def sample(self, *, broker_up: bool) -> None:
        now = time.monotonic()
        articles = sqlite_count(self._sqlite_path)
        if articles is not None and articles != self.articles:
            self.articles = articles
            self.history.append((now, articles))
            self.last_change = now
        if broker_up:
            try:
                records = sum(self._consumer.end_offsets(self._partitions).values())
            except Exception:  # the broker just came back, or is slow: the next sample will do
                return
            if records != self.records:
                self.records = records
                self.last_change = now

    def holds(self, expected: set[str]) -> bool:
        """Does the SQLite sink hold every one of ``expected``?"""
        return expected <= set(sqlite_ids(self._sqlite_path))

    def longest_stall(self, until: float, expected: int) -> tuple[float, float, float]:
        """Longest time the article count stood still before every article had arrived: (seconds, from, to)."""
        points = [*self.history]
        if points[-1][1] < expected:
            points.append((until, points[-1][1]))
        best = (0.0, 0.0, 0.0)
        for (at, count), (later, _) in itertools.pairwise(points):
            if count < expected and later - at > best[0]:
                best = (later - at, at, later)
        return best

    def close(self) -> None:
        self._consumer.close()


def run_chaos(plan: ChaosPlan, *, progress: Callable[[str], None] = print, keep: Path | None = None) -> ChaosReport:
    started = time.monotonic()
    deadline = started + plan.deadline_s
    work = Path(tempfile.mkdtemp(prefix="newswire-chaos-"))
    stack = ExitStack()
    problems: list[str] = []

    def say(line: str) -> None:
        progress(f"[{time.monotonic() - started:6.1f}s] {line}")

    try:
        broker = private_broker(work)
        info = broker.start()
        stack.callback(lambda: _stop_broker(work, info.port, info.controller_port))
        kafka = KafkaSettings(bootstrap_servers=info.bootstrap)
        topics = run_topics(f"chaos.{uuid.uuid4().hex[:6]}")
        ensure_topics(kafka, topics)
        postgres = stack.enter_context(postgres_cluster()).database("chaos")
        sink = PostgresSink(postgres.dsn, password=postgres.password, table=TABLE)
        sink.open()  # creates the table, as the pipeline's first write would
        sink.close()
        refuse_marked_articles(postgres, TABLE)
        say(f"broker {info.bootstrap}, PostgreSQL {postgres.dsn}; building {plan.articles} pages on {plan.hosts} hosts")

        publishers = stack.enter_context(
            Publishers(
                plan.articles, plan.hosts, transient_share=plan.transient_share, failing_feeds=plan.failing_feeds,
                timeout_delay_s=plan.read_timeout_s * 3, seed=plan.seed,
            )
        )  # fmt: skip
        poison = poison_records(round(plan.articles * plan.poison_share), seed=plan.seed)
        waves = [poison[0::3], poison[1::3], poison[2::3]]
        output = work / "output"
        env = newswire_environment(info.bootstrap, topics, _service_settings(plan, work, postgres, publishers))
        (work / "logs").mkdir()
        supervisor = Supervisor(started)
        stack.callback(supervisor.stop_all)
        supervisor.add(Service("pipeline", ("pipeline",), env, work / "logs"))
        sources = publishers.sources_yaml(work / "sources.yaml")
        ingest = ("ingest", "--workers", str(plan.fetch_workers), "--sources", str(sources))
        supervisor.add(Service("ingest", ingest, env, work / "logs"))
        writer = PoisonWriter(client_config(kafka), topics.raw)
        stack.callback(writer.close)
        sampler = _Progress(kafka, topics, output / "articles.sqlite3")
        stack.callback(sampler.close)
        say(f"ingest ({plan.fetch_workers} fetch workers) and pipeline started; {len(poison)} poison records to write")

        pending = plan.events()
        records: list[EventRecord] = []
        active: tuple[Event, float, Callable[[], str]] | None = None
        broker_up = True
        last_report = 0.0
        finished = "deadline"
        expected = {page.article_id for page in publishers.pages}
        while True:
            now = time.monotonic()
            elapsed = now - started
            supervisor.check()
            sampler.sample(broker_up=broker_up)
            share = sampler.articles / plan.articles
            if active is not None:
                event, began, finish = active
                if now - began >= event.duration_s:
                    detail = finish()
                    broker_up = True
                    records.append(EventRecord(event.name, began - started, now - started, detail))
                    say(f"{event.name}: over ({detail})" if detail else f"{event.name}: over")
                    active = None
            elif pending and (share >= pending[0].share or elapsed >= pending[0].fallback_s):
                event = pending.pop(0)
                say(f"{event.name} (articles in SQLite: {sampler.articles})")
                finish, detail = _begin(event, supervisor, publishers, work, postgres, info.port, info.controller_port)
                if event.name.startswith("broker"):
                    broker_up = False
                if event.name.startswith("poison"):
                    wave = waves[int(event.name[-1]) - 1]
                    problems += writer.write(wave, deadline=deadline)
                    refused = sum(1 for p in wave if p.refused)
                    detail = f"{len(wave)} written" + (f", {refused} refused by the broker" if refused else "")
                if event.duration_s:
                    active = (event, now, finish)
                else:
                    records.append(EventRecord(event.name, elapsed, time.monotonic() - started, detail))
                    if detail:
                        say(f"{event.name}: {detail}")
            if now - last_report >= 15:
                last_report = now
                say(
                    f"articles in SQLite {sampler.articles}/{plan.articles}; raw+dead-letter records "
                    f"{sampler.records}; fetch worker processes {supervisor.count_children('ingest')}"
                )
            events_done = not pending and active is None
            quiet_s = now - sampler.last_change
            if events_done and sampler.articles >= plan.articles and quiet_s >= 20 and sampler.holds(expected):
                finished = "every article arrived"
                break
            if events_done and quiet_s >= plan.settle_s:
                finished = f"no progress for {plan.settle_s:.0f} s"
                break
            if now >= deadline - min(60.0, plan.deadline_s / 4):  # time kept for stopping and the accounting
                break
            time.sleep(1)
        workers_at_end = supervisor.count_children("ingest")
        say(f"stopping ({finished}); stopping the services, then reading every output")
        supervisor.stop_all()
        outputs = read_outputs(
            sqlite_path=output / "articles.sqlite3", jsonl_path=output / "articles.jsonl", postgres=postgres,
            table=TABLE, kafka=kafka, topics=topics, poison_ids={p.article_id for p in poison if p.article_id},
        )  # fmt: skip
        problems += outputs.read_errors
        return _report(
            plan, started, sampler, publishers, poison, outputs, topics, supervisor, records, finished, problems,
            workers_at_end,
        )  # fmt: skip
    finally:
        stack.close()
        if keep is not None:
            shutil.copytree(work / "logs", keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _service_settings(plan: ChaosPlan, work: Path, postgres: PostgresServer, publishers: Publishers) -> dict[str, str]:
    return {
        "NEWSWIRE_SINKS__ENABLED": '["sqlite", "jsonl", "postgres"]',
        "NEWSWIRE_SINKS__OUTPUT_DIR": str(work / "output"),
        "NEWSWIRE_SINKS__POSTGRES_DSN": postgres.dsn,
        "NEWSWIRE_SINKS__POSTGRES_PASSWORD": postgres.password.get_secret_value(),
        "NEWSWIRE_SINKS__POSTGRES_TABLE": TABLE,
        "NEWSWIRE_PIPELINE__DEDUP_INDEX": str(work / "state" / "dedup.sqlite3"),
        "NEWSWIRE_PIPELINE__CONSUMER_GROUP": f"chaos-pipeline-{work.name}",
        "NEWSWIRE_INGEST__STATE_FILE": str(work / "state" / "connectors.sqlite3"),
        "NEWSWIRE_INGEST__ARCHIVE_DIR": str(work / "archive"),
        "NEWSWIRE_INGEST__FETCH_GROUP": f"chaos-fetchers-{work.name}",
        # The publishers are on loopback, which the HTTP layer refuses unless told otherwise.
        "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.0/8"]',
        # 20 hosts x 500 pages must finish within minutes; politeness is still per host.
        "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.01",
        "NEWSWIRE_FETCH__READ_TIMEOUT_S": str(plan.read_timeout_s),
        "NEWSWIRE_FETCH__CONNECT_TIMEOUT_S": "2",
        "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
        "NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT": "0",
    }


def _begin(
    event: Event, supervisor: Supervisor, publishers: Publishers, work: Path, postgres: PostgresServer,
    port: int, controller_port: int,
) -> tuple[Callable[[], str], str]:  # fmt: skip
    """Start ``event``; returns what ends it (for events that last) and a line about what was done."""
    name = event.name
    if name.startswith("SIGKILL pipeline"):
        supervisor.kill("pipeline")
        return (lambda: ""), "killed and restarted"
    if name.startswith("SIGKILL fetch worker"):
        before = supervisor.count_children("ingest")
        pid = supervisor.kill_child("ingest")
        if pid is None:
            # No separate worker processes: the ingest process is the fetch worker.
            supervisor.kill("ingest")
            return (lambda: ""), "no fetch worker process found: killed and restarted ingest itself"
        return (lambda: ""), f"killed worker pid {pid} ({before} worker processes before)"
    if name == "host down":
        host = publishers.busiest_host(within_s=10, now=time.monotonic())
        host.server.outage(Reply(reset=True))

        def host_back() -> str:
            host.server.outage(None)
            return f"{host.name} reset every connection for {event.duration_s:.0f} s"

        return host_back, ""
    if name == "broker stopped":
        _stop_broker(work, port, controller_port)

        def broker_back() -> str:
            begun = time.monotonic()
            private_broker(work, port=port, controller_port=controller_port).start()
            return f"restarted in {time.monotonic() - begun:.1f} s"

        return broker_back, ""
    if name == "PostgreSQL stopped":
        postgres.stop()

        def postgres_back() -> str:
            postgres.start()
            return "started again"

        return postgres_back, ""
    return (lambda: ""), ""


def _stop_broker(work: Path, port: int, controller_port: int) -> None:
    broker: LocalBroker = private_broker(work, port=port, controller_port=controller_port)
    broker.stop()


def _report(
    plan: ChaosPlan, started: float, sampler: _Progress, publishers: Publishers, poison: list[Poison], outputs: Outputs,
    topics: TopicSettings, supervisor: Supervisor, events: list[EventRecord], finished: str, problems: list[str],
    workers_at_end: int,
) -> ChaosReport:  # fmt: skip
    expected = {page.article_id for page in publishers.pages}
    behind = publishers.behind_a_failure()
    stall, stall_from, stall_to = sampler.longest_stall(time.monotonic(), plan.articles)
    poison_ids = {p.key for p in poison}
    return ChaosReport(
        plan=plan,
        expected=len(expected),
        sinks=sink_figures(outputs, expected),
        behind_failure=len(behind),
        behind_failure_missing={s: len(behind - set(ids)) for s, ids in outputs.by_sink.items()},
        poison=poison_outcomes(poison, outputs, topics.raw),
        dead_letters=dead_letter_figures(outputs.dead_letters),
        article_dead_letters=sum(1 for d in outputs.dead_letters if d.source_url and PAGE_PREFIX in d.source_url),
        undecodable_dead_letters=outputs.undecodable_dead_letters,
        raw_repeats=sum(n - 1 for key, n in outputs.raw_keys.items() if n > 1 and key not in poison_ids),
        duplicates_topic=outputs.duplicates,
        hosts=publishers.figures(),
        events=events,
        exits=supervisor.exits,
        slow_stops=supervisor.slow_stops,
        problem_lines={name: s.problem_lines() for name, s in supervisor.services.items()},
        longest_stall_s=stall,
        longest_stall_at_s=(stall_from - started, stall_to - started),
        last_arrival_s=sampler.history[-1][0] - started,
        wall_s=time.monotonic() - started,
        finished=finished,
        fetch_workers_at_end=workers_at_end,
        problems=problems,
    )
