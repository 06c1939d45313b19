"""The chaos benchmark's core at a tiny size: 60 articles from 3 loopback hosts, every kind of
poison, a few transient page failures and one SIGKILL of the pipeline, no outages.

Real broker, real PostgreSQL, real `newswire ingest` and `newswire pipeline` processes: the
run must lose no article, write none twice to a sink, handle every poison record as the
benchmark expects (dead-lettered once, or carried through) and see no service exit by itself.
"""

from __future__ import annotations

import pytest

from bench.chaos.__main__ import print_report
from bench.chaos.run import ChaosPlan, run_chaos

pytestmark = pytest.mark.integration


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
