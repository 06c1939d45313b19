"""The ingest service's pure pieces: which outcomes are retried, how long to wait, and the
persistent schedule's lifecycle of an entry (a real SQLite file, two connections standing in
for the poller's and a worker's process)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.http.host_ledger import HostLedger
from connectors.http.outcomes import FetchResult, Outcome, Refusal, Timings, is_retryable
from connectors.ingest import RetryPolicy, Schedule, entry_key
from connectors.ingest.poller import publisher_poll_interval
from connectors.ingest.schedule import Delivery
from schemas.feed_entry import FeedEntry, FeedKind


def entry(path: str = "/a") -> FeedEntry:
    url = f"https://news.example{path}"
    feed = "https://news.example/feed"
    return FeedEntry(canonical_url=url, url=url, feed_url=feed, source_name="s", found_in=FeedKind.RSS)


@pytest.mark.parametrize(
    ("outcome", "status", "refusal", "retryable"),
    [
        (Outcome.TIMED_OUT, None, None, True),
        (Outcome.UNREACHABLE, None, None, True),
        (Outcome.RATE_LIMITED, 429, None, True),
        (Outcome.HTTP_ERROR, 503, None, True),
        (Outcome.HTTP_ERROR, 500, None, True),
        (Outcome.HTTP_ERROR, 408, None, True),
        (Outcome.HTTP_ERROR, 501, None, False),
        (Outcome.HTTP_ERROR, 404, None, False),
        (Outcome.HTTP_ERROR, 410, None, False),
        (Outcome.BLOCKED, 403, None, False),
        (Outcome.PAYWALLED, 200, None, False),
        (Outcome.CONSENT_WALL, 200, None, False),
        (Outcome.NOT_AN_ARTICLE, 200, None, False),
        (Outcome.REFUSED_BY_POLICY, None, Refusal.ROBOTS_TXT, False),
        (Outcome.REFUSED_BY_POLICY, None, Refusal.ROBOTS_UNAVAILABLE, True),
        (Outcome.REFUSED_BY_POLICY, None, Refusal.ADDRESS, False),
    ],
)
def test_outcomes_are_final_or_retryable(
    outcome: Outcome, status: int | None, refusal: Refusal | None, retryable: bool
) -> None:
    assert is_retryable(outcome, status, refusal) is retryable


def test_backoff_doubles_within_its_bounds_and_jitter_and_retry_after_come_first() -> None:
    policy = RetryPolicy(backoff_s=10, backoff_max_s=60, jitter=0.5, retry_after_max_s=120)
    assert [policy.delay_s(n, None, 1.0) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    assert policy.delay_s(1, None, 0.0) == 5, "jitter draws between half and the whole backoff"
    assert policy.delay_s(5, 2.0, 0.5) == 2.0, "the server's Retry-After decides when it gives one"
    assert policy.delay_s(1, 3600.0, 0.5) == 120, "a Retry-After is capped by ingest.retry_after_max_s"


def test_an_entry_is_seen_only_once_its_outcome_is_final(tmp_path: Path) -> None:
    poller, worker = Schedule(tmp_path / "state.sqlite3"), Schedule(tmp_path / "state.sqlite3")
    item, key = entry(), entry_key(entry())
    poller.queued("s", {key: item})
    assert poller.in_flight("s", [key]) == {key}
    delivery = worker.begin(item, key)
    assert isinstance(delivery, Delivery) and delivery.attempts == 0 and delivery.deliveries == 1
    worker.reschedule(item, key, attempts=1, due_at=time.time() + 3600, error="timed_out: slow")
    assert poller.due_retries(time.time()) == [] and poller.waiting() == 1
    assert worker.begin(item, key) == "a copy of a retry due in 3600s", "a stale copy is not the retry"
    worker.reschedule(item, key, attempts=1, due_at=time.time() - 1, error="timed_out: slow")
    [due] = poller.due_retries(time.time())
    assert due.entry == item and due.attempts == 1
    poller.released([due])
    again = worker.begin(item, key)
    assert isinstance(again, Delivery) and again.attempts == 1 and again.last_error == "timed_out: slow"
    worker.finish("s", key)
    assert poller.pending() == 0 and poller.in_flight("s", [key]) == set()
    assert worker.begin(item, key) == "already final"


def test_deliveries_are_counted_durably_and_a_surviving_worker_takes_its_count_back(tmp_path: Path) -> None:
    item, key = entry(), entry_key(entry())
    first = Schedule(tmp_path / "state.sqlite3")
    first.queued("s", {key: item})
    first.begin(item, key)
    first.close()  # the process died here
    second = Schedule(tmp_path / "state.sqlite3")
    delivery = second.begin(item, key)
    assert isinstance(delivery, Delivery) and delivery.deliveries == 2
    second.forget_delivery("s", key)  # Kafka failed, the worker lived
    delivery = second.begin(item, key)
    assert isinstance(delivery, Delivery) and delivery.deliveries == 2


def test_a_release_does_not_overwrite_a_retry_a_worker_already_rescheduled(tmp_path: Path) -> None:
    schedule = Schedule(tmp_path / "state.sqlite3")
    item, key = entry(), entry_key(entry())
    schedule.queued("s", {key: item})
    schedule.reschedule(item, key, attempts=1, due_at=time.time() - 1, error="x")
    [due] = schedule.due_retries(time.time())
    # The task is published and handled (and fails again) before the poller records the release.
    schedule.reschedule(item, key, attempts=2, due_at=time.time() - 1, error="y")
    schedule.released([due])
    [still_due] = schedule.due_retries(time.time())
    assert still_due.attempts == 2


def test_the_host_ledger_spaces_request_starts_across_processes(tmp_path: Path) -> None:
    poller, worker = HostLedger(tmp_path / "hosts.sqlite3"), HostLedger(tmp_path / "hosts.sqlite3")
    assert poller.reserve("news.example", 1.0) == 0.0
    wait = worker.reserve("news.example", 1.0)
    assert 0.9 <= wait <= 1.0, "the second process waits for the first one's interval"
    assert worker.reserve("other.example", 1.0) == 0.0, "other hosts do not wait"
    poller.defer("news.example", 30)
    assert worker.reserve("news.example", 1.0) >= 29, "a Retry-After holds back every process"


def fetched_feed(body: bytes, headers: dict[str, str]) -> FetchResult:
    timings = Timings(started_at=datetime.now(UTC))
    return FetchResult(url="u", final_url="u", outcome=Outcome.OK, timings=timings, headers=headers, body=body)


def test_the_next_poll_honours_rss_ttl_and_cache_control_max_age() -> None:
    ttl = b"<rss><channel><ttl>15</ttl><item/></channel></rss>"
    assert publisher_poll_interval(fetched_feed(ttl, {})) == 900.0
    assert publisher_poll_interval(fetched_feed(b"<rss/>", {"cache-control": "public, max-age=600"})) == 600.0
    both = fetched_feed(ttl, {"cache-control": "max-age=60"})
    assert publisher_poll_interval(both) == 900.0, "the longer of the two asks"
    assert publisher_poll_interval(fetched_feed(b"<rss/>", {"cache-control": "no-cache"})) is None
