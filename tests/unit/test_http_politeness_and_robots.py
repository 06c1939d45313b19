"""The per-host gate, robots.txt rules (RFC 9309) and their cache, and Retry-After parsing."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.http.client import retry_after_seconds
from connectors.http.outcomes import FetchResult, Outcome, Timings
from connectors.http.politeness import HostGate
from connectors.http.robots import RobotsCache, rules_from_fetch


def _starts_with_threads(gate: HostGate, hosts: list[str], hold_s: float = 0.0) -> list[tuple[str, float, float]]:
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def request(host: str) -> None:
        with gate.slot(host):
            began = time.monotonic()
            time.sleep(hold_s)
            with lock:
                spans.append((host, began, time.monotonic()))

    threads = [threading.Thread(target=request, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return sorted(spans, key=lambda span: span[1])


def test_starts_on_one_host_are_spaced_and_other_hosts_are_not_held_up() -> None:
    spans = _starts_with_threads(HostGate(interval_s=0.1, concurrency=1), ["a"] * 4 + ["b"])
    starts = [began for host, began, _ in spans if host == "a"]
    assert all(later - earlier >= 0.095 for earlier, later in itertools.pairwise(starts))
    b_start = next(began for host, began, _ in spans if host == "b")
    assert b_start - spans[0][1] < 0.05


def test_the_concurrency_cap_holds() -> None:
    spans = _starts_with_threads(HostGate(interval_s=0.0, concurrency=2), ["a"] * 6, hold_s=0.05)
    for _, began, _ in spans:
        in_flight = sum(1 for _, other_began, other_ended in spans if other_began <= began < other_ended)
        assert in_flight <= 2


def test_defer_holds_the_host_back() -> None:
    gate = HostGate(interval_s=0.0, concurrency=1)
    gate.defer("a", 0.2)
    with gate.slot("a") as queued_s:
        assert queued_s >= 0.19


def _robots_result(outcome: Outcome, status: int | None, body: bytes = b"") -> FetchResult:
    return FetchResult(
        url="http://x/robots.txt",
        final_url="http://x/robots.txt",
        outcome=outcome,
        status=status,
        body=body,
        timings=Timings(started_at=datetime.now(UTC)),
        detail=None if outcome is Outcome.OK else f"{outcome}",
    )


@pytest.mark.parametrize(
    ("outcome", "status", "allowed"),
    [
        (Outcome.HTTP_ERROR, 404, True),
        (Outcome.BLOCKED, 403, True),
        (Outcome.REDIRECTED, 302, True),
        (Outcome.HTTP_ERROR, 500, False),
        (Outcome.RATE_LIMITED, 429, False),
        (Outcome.TIMED_OUT, None, False),
        (Outcome.UNREACHABLE, None, False),
    ],
)
def test_robots_txt_that_is_missing_allows_and_one_that_fails_disallows(
    outcome: Outcome, status: int | None, allowed: bool
) -> None:
    rules = rules_from_fetch("http://x", _robots_result(outcome, status), ttl_s=60, error_ttl_s=5)
    assert rules.allows("http://x/news/1", "newswire") is allowed


def test_robots_groups_wildcards_and_crawl_delay() -> None:
    body = b"User-agent: *\nDisallow: /\n\nUser-agent: newswire\nDisallow: /*.pdf$\nAllow: /\nCrawl-delay: 3\n"
    rules = rules_from_fetch("http://x", _robots_result(Outcome.OK, 200, body), ttl_s=60, error_ttl_s=5)
    assert rules.allows("http://x/news/1", "newswire")
    assert not rules.allows("http://x/report.pdf", "newswire")
    assert not rules.allows("http://x/news/1", "otherbot")
    assert rules.crawl_delay("newswire") == 3.0


def test_robots_txt_is_fetched_once_per_origin_by_many_threads() -> None:
    cache = RobotsCache(ttl_s=60, error_ttl_s=5)
    fetched: list[str] = []

    def fetch_robots(url: str) -> FetchResult:
        fetched.append(url)
        time.sleep(0.05)
        return _robots_result(Outcome.OK, 200, b"User-agent: *\nDisallow: /private\n")

    threads = [threading.Thread(target=cache.rules_for, args=("http://x", fetch_robots)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert fetched == ["http://x/robots.txt"]
    assert not cache.rules_for("http://x", fetch_robots).allows("http://x/private/a", "newswire")


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("120") == 120.0
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 58 <= (retry_after_seconds(in_a_minute) or 0) <= 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
