"""A re-run of a micro-batch publishes nothing twice to the enriched and duplicates topics.

On the real broker: the service (``MicroBatchService`` from the settings) runs a batch and
dies after its writes, before its offset commit; the batch then re-runs, in a new process
or as the same service's retry.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from newswire import wiring
from newswire.settings import load_settings
from newswire.topics import client_config
from pipeline.microbatch import BatchReport, MicroBatchService
from schemas import CleanedArticle, DuplicateNotice, EnrichedArticle, decode
from tests.integration.harness import NewswireRun
from tests.integration.pipeline_service import articles, publish, settings_for

pytestmark = pytest.mark.integration


class _Killed(BaseException):
    """The process dies: nothing after it runs, not even the service's retries."""


def _with_copies(originals: list[CleanedArticle]) -> list[CleanedArticle]:
    """``originals`` and, after them, a copy of the first two under other ids (exact-content duplicates)."""
    copies = [a.model_copy(update={"article_id": f"{a.article_id}-copy"}) for a in originals[:2]]
    return [*originals, *copies]


def _outputs(run_topics: Any, bootstrap: str) -> tuple[Counter[str], Counter[tuple[str, str, bool]]]:
    """How many times each article is on enriched, and each duplicate decision on duplicates."""
    from newswire.settings import KafkaSettings
    from newswire.tail import records_to_end

    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    enriched = Counter(decode(m.value, EnrichedArticle).article_id for m in records_to_end(kafka, run_topics.enriched))
    notices = [decode(m.value, DuplicateNotice) for m in records_to_end(kafka, run_topics.duplicates)]
    return enriched, Counter((n.article_id, n.duplicate_of, n.was_original) for n in notices)


def _kill_before_commit(service: MicroBatchService, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(ranges: Any) -> None:
        raise _Killed("SIGKILL between the writes and the offset commit")

    monkeypatch.setattr(service, "_commit", killed)


def test_a_batch_killed_before_its_commit_publishes_each_record_once_when_a_new_process_reruns_it(
    newswire_run: NewswireRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _with_copies(articles(5, prefix="seed-rerun"))
    publish(newswire_run.bootstrap, newswire_run.topics.raw, batch)
    for name, value in newswire_run.env.items():
        if name.startswith("NEWSWIRE_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    # The first attempt, exactly as the service runs it, dies after its writes.
    with wiring.JobServers() as job_servers:
        service = wiring.micro_batch_service(settings, job_servers)
        try:
            _kill_before_commit(service, monkeypatch)
            with pytest.raises(_Killed):
                service.run_batch(service.plan_batch())
        finally:
            service.close()
    enriched, notices = _outputs(newswire_run.topics, newswire_run.bootstrap)
    assert sorted(enriched) == sorted(a.article_id for a in batch[:5]) and set(enriched.values()) == {1}
    assert sorted(notices) == [("seed-rerun0-copy", "seed-rerun0", False), ("seed-rerun1-copy", "seed-rerun1", False)]

    # The restarted service finds the batch uncommitted and marked as attempted, and re-runs it.
    newswire_run.command("pipeline", "--until-caught-up")
    assert _outputs(newswire_run.topics, newswire_run.bootstrap) == (enriched, notices)
    assert sorted(r[0] for r in newswire_run.sqlite_rows()) == sorted(enriched)
    # Committed to the end, and the attempt's mark cleared with it.
    group = KafkaConsumer(**client_config(settings.kafka), group_id=settings.pipeline.consumer_group)
    try:
        committed = group.committed(TopicPartition(newswire_run.topics.raw, 0), metadata=True)
    finally:
        group.close()
    assert committed is not None and (committed.offset, committed.metadata) == (len(batch), "")


def test_a_retried_batch_skips_what_its_failed_attempt_published_and_a_fresh_batch_reads_nothing_back(
    kafka_broker: Any, topics: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = _with_copies(articles(4, prefix="seed-retry"))
    publish(kafka_broker.bootstrap, topics.raw, batch)
    settings = settings_for(kafka_broker.settings, topics, tmp_path)
    reports: list[BatchReport] = []
    with wiring.JobServers() as job_servers:
        service = wiring.micro_batch_service(settings, job_servers, on_batch=reports.append)
        commit = service._commit
        failed: list[int] = []

        def fails_once(ranges: Any) -> None:
            # The commit fails once while every dependency answers: the service retries the batch.
            if not failed:
                failed.append(1)
                raise RuntimeError("the group coordinator moved")
            commit(ranges)

        monkeypatch.setattr(service, "_commit", fails_once)
        try:
            service.run(until_caught_up=True, stop=threading.Event())
            # A later batch that is no re-run publishes without looking back.
            publish(kafka_broker.bootstrap, topics.raw, articles(6, prefix="seed-retry")[4:])
            service.run(until_caught_up=True, stop=threading.Event())
        finally:
            service.close()

    enriched, notices = _outputs(topics, kafka_broker.bootstrap)
    assert sorted(enriched) == [f"seed-retry{n}" for n in range(6)] and set(enriched.values()) == {1}
    assert sorted(notices) == [("seed-retry0-copy", "seed-retry0", False), ("seed-retry1-copy", "seed-retry1", False)]
    rerun, fresh = reports
    assert rerun.counters.get(f"kafka.already_written.{topics.enriched}") == 4
    assert rerun.counters.get(f"kafka.already_written.{topics.duplicates}") == 2
    assert not any(name.startswith("kafka.already_written") for name in fresh.counters)
    assert fresh.counters.get(f"kafka.written.{topics.enriched}") == 2
