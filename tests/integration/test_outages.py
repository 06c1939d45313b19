"""Outages are waited out, not dead-lettered: PostgreSQL stopped mid-run, the broker stopped.

Each test breaks a real dependency of its own (a private PostgreSQL cluster, a private
broker) while the service runs, then brings it back, and checks that the service paused,
said so once, reported not-ready through ``health``, resumed by itself, and lost and
doubled nothing.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from newswire.settings import BrokerSettings, KafkaSettings, TopicSettings
from newswire.testing.deployment import newswire_environment, run_topics
from newswire.testing.postgres import PostgresServer, postgres_cluster
from newswire.topics import ensure_topics
from tests.conftest import JAR_CACHE
from tests.integration.harness import NewswireRun
from tests.integration.pipeline_service import (
    HealthLog,
    articles,
    dead_letters,
    publish,
    running_service,
    settings_for,
)

pytestmark = pytest.mark.integration


def _wait_for(condition: Callable[[], Any], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _postgres_ids(database: PostgresServer) -> list[str]:
    try:
        with database.connect(connect_timeout=2) as db:
            return [row[0] for row in db.execute("SELECT article_id FROM articles")]
    except Exception:  # down, or the table not created yet
        return []


def test_postgres_stopped_mid_run_is_waited_out_without_dead_letters(
    kafka_broker: Any, topics: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = articles(20)[:10], articles(20)[10:]
    health = HealthLog()
    caplog.set_level("WARNING")
    with postgres_cluster() as cluster:
        database = cluster.database()
        settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("jsonl", "postgres"), database=database)
        publish(kafka_broker.bootstrap, topics.raw, first)
        with running_service(settings, health) as running:
            _wait_for(lambda: len(_postgres_ids(database)) == 10, timeout_s=60, what="the first articles")
            _wait_for(lambda: running.reports, timeout_s=30, what="the first batch's commit")
            cluster.stop()
            stopped = time.monotonic()
            publish(kafka_broker.bootstrap, topics.raw, second)
            _wait_for(lambda: health.states("sink:postgres")[-1:] == [False], timeout_s=60, what="not-ready")
            time.sleep(3)  # paused, probing: nothing is dead-lettered meanwhile
            assert not dead_letters(kafka_broker.bootstrap, topics.dead_letter)
            cluster.start()
            _wait_for(lambda: len(_postgres_ids(database)) == 20, timeout_s=60, what="the articles after the outage")
            outage_s = time.monotonic() - stopped
            assert running.thread.is_alive() and not running.errors, f"the service exited: {running.errors}"

    assert not dead_letters(kafka_broker.bootstrap, topics.dead_letter), "an outage is never a record's fault"
    assert health.states("sink:postgres") == [True, False, True], health.calls
    ids = sorted(_ids_in_jsonl(tmp_path / "output" / "articles.jsonl"))
    assert ids == sorted(a.article_id for a in first + second), "every article exactly once"
    ours = [r.getMessage() for r in caplog.records if r.name == "pipeline.microbatch"]
    assert [m for m in ours if m.startswith("sink:postgres is down")] == [
        "sink:postgres is down; pausing the pipeline until it answers (no dead letters meanwhile)"
    ]
    (back,) = [m for m in ours if m.startswith("sink:postgres is back")]
    assert 3 <= float(re.findall(r"after ([\d.]+) s", back)[0]) <= outage_s
    print(f"PostgreSQL down {outage_s:.1f} s; {len(caplog.records)} WARNING+ lines in all; ours: {ours}")


def _ids_in_jsonl(path: Path) -> list[str]:
    return [json.loads(line)["article_id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_broker_stopped_for_seconds_the_service_survives_resumes_and_logs_a_handful(tmp_path: Path) -> None:
    from newswire.broker import LocalBroker

    # A broker of its own, since this test stops it; pinned to its ports so that it comes
    # back where the service looks for it.
    broker_settings = BrokerSettings(home=tmp_path / "broker", cache_dir=JAR_CACHE, port=0, controller_port=0)
    broker = LocalBroker(broker_settings, TopicSettings())
    info = broker.start()
    pinned = broker_settings.model_copy(update={"port": info.port, "controller_port": info.controller_port})
    topics = run_topics(f"outage-{uuid.uuid4().hex[:8]}")
    try:
        kafka = KafkaSettings(bootstrap_servers=info.bootstrap)
        ensure_topics(kafka, topics)
        run = NewswireRun(
            env=newswire_environment(
                info.bootstrap,
                topics,
                {
                    "NEWSWIRE_SINKS__OUTPUT_DIR": str(tmp_path / "output"),
                    "NEWSWIRE_PIPELINE__DEDUP_INDEX": str(tmp_path / "state" / "dedup.sqlite3"),
                    "NEWSWIRE_PIPELINE__BATCH_INTERVAL_S": "0.5",
                    "NEWSWIRE_RECOVERY__INITIAL_BACKOFF_S": "0.5",
                    "NEWSWIRE_RECOVERY__MAX_BACKOFF_S": "2",
                    "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
                    "NEWSWIRE_OBSERVABILITY__LOG_FORMAT": "text",
                },
            ),
            bootstrap=info.bootstrap,
            topics=topics,
            output_dir=tmp_path / "output",
        )
        before, after = articles(30)[:15], articles(30)[15:]
        publish(info.bootstrap, topics.raw, before)
        log_path = tmp_path / "pipeline.log"
        pipeline = run.start("pipeline", log=log_path)
        try:
            run.wait_for_sqlite_rows(pipeline, 15, timeout_s=120)
            lines_before = len(log_path.read_text().splitlines())
            broker.stop()
            time.sleep(10)
            assert pipeline.poll() is None, f"the service exited while the broker was away:\n{log_path.read_text()}"
            LocalBroker(pinned, TopicSettings()).start()
            publish(info.bootstrap, topics.raw, after)
            run.wait_for_sqlite_rows(pipeline, 30, timeout_s=120)
            assert pipeline.poll() is None
            log = log_path.read_text().splitlines()[lines_before:]
        finally:
            pipeline.terminate()
            pipeline.wait(timeout=60)
        noisy = [line for line in log if line.startswith(("warning", "error", "critical"))]
        assert len(noisy) <= 6, f"{len(noisy)} WARNING/ERROR lines for a 10 s outage:\n" + "\n".join(noisy)
        ids = [row[0] for row in run.sqlite_rows()]
        assert sorted(ids) == sorted(a.article_id for a in before + after)
        jsonl = Counter(json.loads(line)["article_id"] for line in run.jsonl_lines())
        assert set(jsonl.values()) == {1} and len(jsonl) == 30, "each article written once"
        print(f"{len(noisy)} WARNING/ERROR lines during and after a 10 s broker outage:\n" + "\n".join(noisy))
    finally:
        broker.stop()


@contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` at ``path`` (tmpfs; needs root, as CI and the dev machines run)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    assert mounted.returncode == 0, "mounting a small tmpfs needs root"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_waited_out_without_dead_letters(kafka_broker: Any, topics: Any, tmp_path: Path) -> None:
    batch = articles(5)
    health = HealthLog()
    with _small_disk(tmp_path / "disk", "512k") as disk:
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as out:  # fill it to the last block, as another process would
            try:
                while True:
                    out.write(b"\0" * 4096)
            except OSError as error:
                assert error.errno == errno.ENOSPC
        settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("jsonl",))
        settings = settings.model_copy(update={"sinks": settings.sinks.model_copy(update={"output_dir": disk})})
        publish(kafka_broker.bootstrap, topics.raw, batch)
        with running_service(settings, health) as running:
            _wait_for(lambda: health.states("sink:jsonl")[-1:] == [False], timeout_s=60, what="not-ready")
            time.sleep(2)
            assert not dead_letters(kafka_broker.bootstrap, topics.dead_letter), "a full disk is no record's fault"
            filler.unlink()
            _wait_for(lambda: running.reports, timeout_s=60, what="the batch after space came back")
            assert running.thread.is_alive() and not running.errors
        ids = _ids_in_jsonl(disk / "articles.jsonl")
    assert sorted(ids) == sorted(a.article_id for a in batch)
    assert health.states("sink:jsonl") == [False, True]
    assert "No space left" in next(detail for check, ok, detail in health.calls if check == "sink:jsonl" and not ok)
