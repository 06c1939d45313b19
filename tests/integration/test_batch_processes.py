"""A micro-batch cut over two worker processes: the same originals as one process, every
offset committed once all pieces are done, and a piece that dies fails its whole batch.

On the real broker; the service runs from the settings (``wiring.micro_batch_service``) with
``pipeline.parallelism = 2``, as it does by default on a two-core machine.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest

from newswire import wiring
from newswire.settings import Settings
from newswire.tail import records_to_end
from newswire.testing.corpus import write_generated_seeds
from newswire.testing.processes import alive, descendants
from pipeline.graph import PipelineConfig, build_pipeline
from pipeline.microbatch import BatchReport
from schemas import EnrichedArticle, decode
from tests.integration.harness import NewswireRun
from tests.integration.pipeline_service import articles, publish, settings_for

pytestmark = pytest.mark.integration


def _in_processes(settings: Settings, processes: int, *, max_piece_records: int = 1_500) -> Settings:
    pipeline = settings.pipeline.model_copy(
        update={"parallelism": processes, "parallel_min_records": 2, "max_piece_records": max_piece_records}
    )
    return settings.model_copy(update={"pipeline": pipeline})


def _run_until_caught_up(settings: Settings, **service: Any) -> tuple[list[BatchReport], bool]:
    """The service's reports, and whether every partition is committed up to its end."""
    reports: list[BatchReport] = []
    with wiring.JobServers() as job_servers:
        running = wiring.micro_batch_service(settings, job_servers, on_batch=reports.append)
        if "graph" in service:
            running._graph = service["graph"]
        try:
            running.run(until_caught_up=True, stop=threading.Event())
            caught_up = running.committed_offsets() == running.end_offsets()
        finally:
            running.close()
    return reports, caught_up


def _stored(output: Path) -> list[str]:
    with sqlite3.connect(output / "articles.sqlite3") as db:
        return sorted(row[0] for row in db.execute("SELECT article_id FROM articles"))


def test_two_worker_processes_keep_the_originals_one_process_keeps(
    kafka_broker: Any, topics: Any, tmp_path: Path
) -> None:
    distinct = articles(12)
    published = datetime(2026, 3, 1, tzinfo=UTC)
    originals = [a.model_copy(update={"published_at": published + timedelta(hours=i)}) for i, a in enumerate(distinct)]
    # Reprints of the first six, published later but ahead of their originals in the
    # partition: the first worker's piece holds the reprints and three of the originals, the
    # second's the other originals, so three reprints meet their original only in the index.
    reprints = [
        a.model_copy(update={"article_id": f"reprint-{i}", "published_at": published + timedelta(days=1, hours=i)})
        for i, a in enumerate(originals[:6])
    ]
    publish(kafka_broker.bootstrap, topics.raw, [*reprints, *originals])

    one = _in_processes(settings_for(kafka_broker.settings, topics, tmp_path / "one"), 1)
    two = _in_processes(settings_for(kafka_broker.settings, topics, tmp_path / "two"), 2)
    own_cpu = time.process_time()
    one_reports, _ = _run_until_caught_up(one)
    own_cpu, waiting_cpu = time.process_time() - own_cpu, time.process_time()
    two_reports, caught_up = _run_until_caught_up(two)
    waiting_cpu = time.process_time() - waiting_cpu

    assert [r.pieces for r in one_reports] == [1]
    (report,) = two_reports
    assert report.pieces == 2 and report.counters["kafka.records_read"] == len(reprints) + len(originals)
    # In one process the batch's CPU is part of this process's; cut over two, the workers' counts too:
    # each built and ran a whole pipeline while this process mostly waited for them.
    assert 0 < one_reports[0].cpu_s <= own_cpu
    assert report.cpu_s > waiting_cpu, "the worker processes' CPU counts in the batch's"
    assert caught_up, "every offset is committed once both pieces are done"
    expected = sorted(a.article_id for a in originals)
    assert _stored(tmp_path / "one" / "output") == expected
    assert _stored(tmp_path / "two" / "output") == expected, "a reprint kept by one worker is withdrawn"


class _DiesOnce:
    """The real graph, except that the first worker process to build it exits at once, as a
    process killed by the system would: no exception, no word, only its exit code."""

    def __init__(self, flag: Path) -> None:
        self._flag = flag

    def __call__(self, pipeline: beam.Pipeline, source: beam.PTransform, config: PipelineConfig) -> None:
        try:
            descriptor = os.open(self._flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            build_pipeline(pipeline, source, config)
            return
        os.close(descriptor)
        os._exit(3)


def test_a_worker_process_that_dies_fails_its_batch_which_then_lands_once(
    kafka_broker: Any, topics: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = articles(10)
    publish(kafka_broker.bootstrap, topics.raw, batch)
    # Four pieces of at most three records, two at a time: the first to start dies.
    settings = _in_processes(settings_for(kafka_broker.settings, topics, tmp_path), 2, max_piece_records=3)
    caplog.set_level(logging.WARNING, logger="pipeline.microbatch")

    reports, caught_up = _run_until_caught_up(settings, graph=_DiesOnce(tmp_path / "died"))

    (retry,) = [r for r in caplog.records if r.getMessage() == "batch failed; retrying it"]
    assert "exited with code 3" in retry.error  # type: ignore[attr-defined]
    assert caught_up and [r.pieces for r in reports] == [4]
    assert _stored(tmp_path / "output") == sorted(a.article_id for a in batch)
    # The other piece had published before its sibling died; the re-run read that back.
    enriched = [decode(m.value, EnrichedArticle).article_id for m in records_to_end(settings.kafka, topics.enriched)]
    assert sorted(enriched) == sorted(a.article_id for a in batch)


def test_worker_processes_die_with_a_killed_service_and_a_restart_loses_and_doubles_nothing(
    newswire_run: NewswireRun, tmp_path: Path
) -> None:
    count = 600
    write_generated_seeds(tmp_path / "seeds", count)
    newswire_run.env.update(
        {
            "NEWSWIRE_PIPELINE__PARALLELISM": "2",
            "NEWSWIRE_PIPELINE__PARALLEL_MIN_RECORDS": "2",
            "NEWSWIRE_PIPELINE__MAX_BATCH_RECORDS": "300",  # two batches, each two pieces of seconds
        }
    )
    newswire_run.command("replay", str(tmp_path / "seeds"), "--no-progress")

    service = newswire_run.start("pipeline")
    deadline = time.monotonic() + 120
    while not (workers := descendants(service.pid)[1:]):
        assert time.monotonic() < deadline and service.poll() is None, "no batch was cut over worker processes"
        time.sleep(0.05)
    time.sleep(0.5)  # into the pieces' work
    service.send_signal(signal.SIGKILL)
    service.wait(timeout=30)
    # Well within a piece's own work: a worker that merely finished its piece would not be gone yet.
    deadline = time.monotonic() + 1.0
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"worker processes outlived their service: {workers}"
        time.sleep(0.05)

    newswire_run.command("pipeline", "--until-caught-up")
    ids = [row[0] for row in newswire_run.sqlite_rows()]
    assert len(ids) == count and len(set(ids)) == count
    lines = [json.loads(line)["article_id"] for line in newswire_run.jsonl_lines()]
    assert len(lines) == count and len(set(lines)) == count, "the JSON Lines file holds each article once"
