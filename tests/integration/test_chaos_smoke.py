"""The chaos benchmark's core at a tiny size: 60 articles from 3 loopback hosts, every kind of
poison, a few transient page failures and one SIGKILL of the pipeline, no outages.

Real broker, real PostgreSQL, real `newswire ingest` and `newswire pipeline` processes: the
run must lose no article, write none twice to a sink, handle every poison record as the
benchmark expects (dead-lettered once, or carried through) and see no service exit by itself.

Before it, the benchmark's instruments: what the publishers measure at the server (a retry
that came before Retry-After is caught, resets and outages count as failures) and the
PostgreSQL outage, so that its figures can fail when the service misbehaves.
"""

from __future__ import annotations

import psycopg
import pytest
import urllib3

from bench.chaos.__main__ import print_report
from bench.chaos.publishers import Fault, Publishers
from bench.chaos.run import ChaosPlan, run_chaos
from newswire.testing.http_server import Reply
from newswire.testing.postgres import postgres_cluster

pytestmark = pytest.mark.integration


def test_publishers_measure_failures_and_an_early_retry_at_the_server() -> None:
    http = urllib3.PoolManager(retries=False)
    with Publishers(30, 1, transient_share=0.1, failing_feeds=0, timeout_delay_s=0.5, seed=3) as publishers:
        faulty = {page.fault: page for page in publishers.pages if page.fault}
        limited, reset = faulty[Fault.RATE_LIMITED], faulty[Fault.RESET]
        clean = next(page for page in publishers.pages if not page.fault)
        assert http.request("GET", limited.url).status == 429
        assert http.request("GET", limited.url).status == 200, "one failure, then the article"
        for _ in range(reset.failures):
            with pytest.raises(urllib3.exceptions.ProtocolError):
                http.request("GET", reset.url)
        assert http.request("GET", reset.url).status == 200
        publishers.hosts[0].server.outage(Reply(reset=True))
        with pytest.raises(urllib3.exceptions.ProtocolError):
            http.request("GET", clean.url)
        publishers.hosts[0].server.outage(None)
        assert b"<article>" in http.request("GET", clean.url).data
        (figures,) = publishers.figures()
        behind = publishers.behind_a_failure()
    assert (figures.retry_after_given, figures.retry_after_early, figures.retry_after_honoured) == (1, 1, 0)
    assert figures.failures_served == 1 + reset.failures + 1
    assert figures.retries == 1 + reset.failures + 1
    assert behind == {limited.article_id, reset.article_id, clean.article_id}


def test_postgres_stops_and_starts_again_on_its_port_with_its_data() -> None:
    with postgres_cluster() as server:
        database = server.database()
        with database.connect(autocommit=True) as db:
            db.execute("CREATE TABLE kept (n int)")
            db.execute("INSERT INTO kept VALUES (1)")
        database.stop()
        with pytest.raises(psycopg.OperationalError):
            database.connect(connect_timeout=2)
        database.start()
        with database.connect() as db:
            assert db.execute("SELECT n FROM kept").fetchall() == [(1,)]


def test_a_killed_pipeline_and_every_kind_of_poison_lose_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    plan = ChaosPlan(
        articles=60,
        hosts=3,
        # A share that puts a few of the 60 pages behind a 429, a 503, a timeout or a reset.
        transient_share=0.05,
        failing_feeds=1,
        pipeline_kills=1,
        fetch_worker_kills=0,
        broker_outage_s=0,
        postgres_outage_s=0,
        host_outage_s=0,
        deadline_s=150,
        settle_s=25,
    )
    report = run_chaos(plan, progress=lambda line: None)
    with capsys.disabled():
        print_report(report)  # the figures, for whoever reads a failure

    assert report.events and any(e.name.startswith("SIGKILL pipeline") for e in report.events)
    assert report.behind_failure > 0, "the run put no page behind a transient failure"
    lost = {s.sink: s.lost for s in report.sinks if s.lost}
    assert not lost, f"articles lost per sink: {lost}"
    doubled = {s.sink: s.doubled for s in report.sinks if s.doubled and s.sink != "enriched topic"}
    assert not doubled, f"articles written twice per sink: {doubled}"
    mishandled = [
        f"{o.poison.kind}: {o.dead_letters_distinct} dead letters, in {o.in_sinks}" for o in report.poison if not o.ok
    ]
    assert not mishandled, f"poison not handled as expected: {mishandled}"
    assert not report.exits, f"service processes exited on their own: {[(e.service, e.code) for e in report.exits]}"
