"""Transient failures lose nothing: `newswire ingest` against publishers on a loopback server
that answer 429, 503, time out or fail to poll for a while, through the real broker.

Inline retries of the HTTP client are off here (``fetch.max_retries=0``), so every retry is
the ingest schedule's; waits are measured where they matter, at the server.
"""

from __future__ import annotations

import gzip
import itertools
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.partitioner.default import murmur2

from connectors.http import HttpClient
from connectors.ingest import FetchWorker, PageFetcher, Schedule
from connectors.page_archive import PageArchive
from newswire import wiring
from newswire.settings import Settings, load_settings
from newswire.testing.http_server import LoopbackServer, Reply
from schemas import CleanedArticle, DeadLetter, SourceKind, decode
from schemas.feed_entry import FeedEntry, FeedKind
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
# How long a started ingest service may take to fetch its first page: start-up, joining the
# fetch-task consumer group and the poll. The waits end at the fetch; 20 s ran out once on a
# loaded 2-core machine.
FIRST_FETCH_WITHIN_S = 60

PAGES = sorted((Path(__file__).resolve().parents[1] / "data" / "ingest" / "pages").glob("*.html.gz"))
RSS = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def article_page(number: int) -> bytes:
    return gzip.decompress(PAGES[number % len(PAGES)].read_bytes())


def rss(server: LoopbackServer, paths: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>{server.url(path)}</link><guid>{server.url(path)}</guid>"
        f"<pubDate>Mon, 30 Nov 2026 10:0{n % 10}:00 GMT</pubDate></item>"
        for n, path in enumerate(paths)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


def sources_file(path: Path, feeds: dict[str, str], kind: str = "feed") -> Path:
    lines = ["sources:"]
    for name, url in feeds.items():
        lines += [f"  - name: {name}", f"    type: {kind}", f"    url: {url}", "    min_poll_interval_s: 10"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ingest_run(newswire_run: NewswireRun, tmp_path: Path) -> NewswireRun:
    newswire_run.env.update(
        {
            "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.1/32"]',
            "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.02",
            "NEWSWIRE_FETCH__MAX_RETRIES": "0",
            "NEWSWIRE_FETCH__ROBOTS_ERROR_TTL_S": "0.5",
            "NEWSWIRE_INGEST__STATE_FILE": str(tmp_path / "state" / "connectors.sqlite3"),
            "NEWSWIRE_INGEST__ARCHIVE_DIR": str(tmp_path / "archive"),
            "NEWSWIRE_INGEST__FETCH_GROUP": f"fetchers-{tmp_path.name}",
            "NEWSWIRE_INGEST__RETRY_BACKOFF_S": "0.5",
            "NEWSWIRE_INGEST__RETRY_BACKOFF_MAX_S": "4",
            "NEWSWIRE_INGEST__RETRY_JITTER": "0",
            "NEWSWIRE_INGEST__SCHEDULE_CHECK_INTERVAL_S": "0.1",
            # A killed service's fetch worker leaves the group quickly, so the restarted one gets its tasks.
            "NEWSWIRE_INGEST__FETCH_SESSION_TIMEOUT_S": "6",
        }
    )
    return newswire_run


def published(run: NewswireRun) -> list[CleanedArticle]:
    return [decode(v, CleanedArticle) for _, v in run.topic_values(run.topics.raw)]


def dead_letters(run: NewswireRun) -> list[DeadLetter]:
    return [decode(v, DeadLetter) for _, v in run.topic_values(run.topics.dead_letter)]


def test_a_429_with_retry_after_is_published_once_after_the_wait(ingest_run: NewswireRun, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/busy", Reply(429, {"Retry-After": "2"}), Reply(200, HTML, article_page(0)))
        server.route("/calm", Reply(200, HTML, article_page(1)))
        feed = server.route("/feed", Reply(200, RSS, rss(server, ["/busy", "/calm"])))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        result = ingest_run.command("ingest", "--once", "--sources", str(sources))
        busy = server.requests_for("/busy")
        calm = server.requests_for("/calm")
    assert not dead_letters(ingest_run), result.stdout
    urls = sorted(a.canonical_url or "" for a in published(ingest_run))
    assert urls == sorted([server.url("/busy"), server.url("/calm")]), "each published exactly once"
    assert len(busy) == 2
    assert busy[1].at - busy[0].at >= 2.0, "the retry waited out Retry-After (measured at the server)"
    assert calm[0].at < busy[1].at, "the other page did not wait behind the rate-limited one"


def test_a_host_held_back_by_retry_after_does_not_hold_up_the_other_hosts_of_its_worker(
    ingest_run: NewswireRun, tmp_path: Path
) -> None:
    partitions = ingest_run.topics.partitions

    def partition(host: str) -> int:
        return (murmur2(host.encode()) & 0x7FFFFFFF) % partitions  # how the producer places host keys

    # A second loopback host whose tasks share the first one's partition: one queue, one worker.
    other = next(f"127.0.0.{n}" for n in range(2, 40) if partition(f"127.0.0.{n}") == partition("127.0.0.1"))
    ingest_run.env["NEWSWIRE_FETCH__ALLOW_ADDRESSES"] = '["127.0.0.0/8"]'
    ingest_run.env["NEWSWIRE_INGEST__MAX_HOST_WAIT_S"] = "1"
    with LoopbackServer("127.0.0.1") as held, LoopbackServer(other) as free:
        for server in (held, free):
            server.route("/robots.txt", Reply(404))
        held.route("/first", Reply(429, {"Retry-After": "6"}), Reply(200, HTML, article_page(0)))
        held.route("/second", Reply(200, HTML, article_page(1)))
        for n in range(2):
            free.route(f"/story/{n}", Reply(200, HTML, article_page(2 + n)))
        feeds = {
            "a-held": held.route("/feed", Reply(200, RSS, rss(held, ["/first", "/second"]))),
            "b-free": free.route("/feed", Reply(200, RSS, rss(free, ["/story/0", "/story/1"]))),
        }
        ingest_run.command("ingest", "--once", "--sources", str(sources_file(tmp_path / "s.yaml", feeds)))
        [rate_limited, retried] = held.requests_for("/first")
        [second] = held.requests_for("/second")
        free_pages = [r.at for r in free.requests if r.path.startswith("/story/")]
    assert not dead_letters(ingest_run)
    assert len(published(ingest_run)) == 4
    assert retried.at - rate_limited.at >= 6.0 and second.at - rate_limited.at >= 6.0, "the host's wait was kept"
    assert max(free_pages) - rate_limited.at < 4.0, "the other host's pages did not wait behind the held one"


def test_a_host_down_for_a_while_then_back_has_its_articles_published(ingest_run: NewswireRun, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        # The whole host answers 503 for a while: robots.txt too, which must not stop its pages for good.
        server.route("/robots.txt", Reply(503), Reply(503), Reply(404))
        paths = [f"/story/{n}" for n in range(3)]
        for n, path in enumerate(paths):
            server.route(path, Reply(503), Reply(503), Reply(200, HTML, article_page(n)))
        feed = server.route("/feed", Reply(200, RSS, rss(server, paths)))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        result = ingest_run.command("ingest", "--once", "--sources", str(sources))
    assert not dead_letters(ingest_run), [d.error for d in dead_letters(ingest_run)]
    urls = sorted(a.canonical_url or "" for a in published(ingest_run))
    assert urls == sorted(server.url(p) for p in paths), result.stdout


def test_an_entry_that_always_times_out_is_dead_lettered_gave_up_with_attempts_and_last_error(
    ingest_run: NewswireRun, tmp_path: Path
) -> None:
    ingest_run.env.update(
        {
            "NEWSWIRE_FETCH__READ_TIMEOUT_S": "0.3",
            "NEWSWIRE_FETCH__TOTAL_TIMEOUT_S": "0.5",
            "NEWSWIRE_INGEST__RETRY_MAX_ATTEMPTS": "3",
            "NEWSWIRE_INGEST__RETRY_BACKOFF_S": "0.2",
        }
    )
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/slow", Reply(200, HTML, article_page(0), delay_s=1.5))
        feed = server.route("/feed", Reply(200, RSS, rss(server, ["/slow"])))
        ingest_run.command("ingest", "--once", "--sources", str(sources_file(tmp_path / "s.yaml", {"f": feed})))
        attempts = len(server.requests_for("/slow"))
    [dead] = dead_letters(ingest_run)
    assert attempts == 3
    assert dead.error_type == "gave_up" and dead.stage == "fetch"
    assert "3 attempts" in dead.error and "timed_out" in dead.error and "fetch.read_timeout_s" in dead.error
    assert dead.source_url == server.url("/slow")
    assert not published(ingest_run)


def retries_pending(port: int) -> float | None:
    """The ingest service's newswire_ingest_retries_pending gauge, from its /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    values = [line.split()[-1] for line in text.splitlines() if line.startswith("newswire_ingest_retries_pending ")]
    return float(values[0]) if values else None


def test_a_feed_whose_poll_fails_backs_off_then_recovers(ingest_run: NewswireRun, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ingest_run.env["NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT"] = str(port)
    pending_seen: set[float] = set()
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/story", Reply(200, HTML, article_page(2)))
        failing = [Reply(503)] * 4
        feed = server.route("/feed", *failing, Reply(200, RSS, rss(server, ["/story"])))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        service = ingest_run.start("ingest", "--sources", str(sources), log=tmp_path / "ingest.log")
        try:
            deadline = time.monotonic() + 20
            while not server.requests_for("/story") and time.monotonic() < deadline:
                assert service.poll() is None, (tmp_path / "ingest.log").read_text()
                if (pending := retries_pending(port)) is not None:
                    pending_seen.add(pending)
                time.sleep(0.1)
            time.sleep(1.0)  # the article's publication follows its page fetch
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=30)
        polls = [r.at for r in server.requests_for("/feed")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert len(polls) >= 5, (tmp_path / "ingest.log").read_text()
    # Backoff 0.5 s doubling, no jitter: 0.5, 1, 2, 4 between the five polls.
    for earlier, later in itertools.pairwise(gaps[:4]):
        assert later >= earlier * 1.6, f"poll intervals do not grow: {[f'{g:.2f}' for g in gaps]}"
    assert gaps[0] >= 0.45
    assert [a.canonical_url for a in published(ingest_run)] == [server.url("/story")], "it recovered"
    assert not dead_letters(ingest_run), "a poll that failed four times is not given up on"
    assert 1.0 in pending_seen, f"the backing-off source shows in newswire_ingest_retries_pending: {pending_seen}"


def test_a_restart_in_the_middle_of_a_backoff_keeps_the_schedule(ingest_run: NewswireRun, tmp_path: Path) -> None:
    ingest_run.env["NEWSWIRE_INGEST__RETRY_BACKOFF_S"] = "4"
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/story", Reply(503), Reply(200, HTML, article_page(3)))
        feed = server.route("/feed", Reply(200, RSS, rss(server, ["/story"])))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        first = ingest_run.start("ingest", "--sources", str(sources), log=tmp_path / "first.log")
        try:
            deadline = time.monotonic() + FIRST_FETCH_WITHIN_S
            while not server.requests_for("/story") and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the retry is scheduled (and durable) before the task is committed
        finally:
            first.kill()  # a crash: no chance to tidy up
            first.wait(timeout=10)
        [failed] = server.requests_for("/story")
        ingest_run.command("ingest", "--once", "--sources", str(sources))
        requests = server.requests_for("/story")
    assert len(requests) == 2, "the retry happened after the restart, once"
    assert requests[1].at - failed.at >= 4.0, "the restart kept the backoff instead of fetching at once"
    assert [a.canonical_url for a in published(ingest_run)] == [server.url("/story")]
    assert not dead_letters(ingest_run)


def test_a_task_whose_worker_dies_while_handling_it_is_dead_lettered_instead_of_crash_looping(
    ingest_run: NewswireRun, tmp_path: Path
) -> None:
    ingest_run.env["NEWSWIRE_INGEST__MAX_TASK_DELIVERIES"] = "1"
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        # The page holds the worker busy, long enough to kill it in the middle.
        server.route("/deadly", Reply(200, HTML, article_page(6), delay_s=20))
        feed = server.route("/feed", Reply(200, RSS, rss(server, ["/deadly"])))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        first = ingest_run.start("ingest", "--sources", str(sources), log=tmp_path / "first.log")
        try:
            deadline = time.monotonic() + FIRST_FETCH_WITHIN_S
            while not server.requests_for("/deadly") and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            first.kill()  # the worker dies while handling the task
            first.wait(timeout=10)
        ingest_run.command("ingest", "--once", "--sources", str(sources), timeout=120)
        fetches = len(server.requests_for("/deadly"))
    [dead] = dead_letters(ingest_run)
    assert dead.error_type == "worker_crashed" and dead.source_url == server.url("/deadly")
    assert "ingest.max_task_deliveries=1" in dead.error
    assert fetches == 1, "the task that killed its worker was not handed out again"


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def fetch_worker_pids(pid: int) -> list[int]:
    """The service's fetch-worker processes (spawned; not multiprocessing's resource tracker)."""
    pids = []
    for child in children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"resource_tracker" not in command:
            pids.append(child)
    return pids


def test_a_killed_fetch_worker_process_is_replaced_and_its_task_dead_lettered_not_looped(
    ingest_run: NewswireRun, tmp_path: Path
) -> None:
    ingest_run.env["NEWSWIRE_INGEST__MAX_TASK_DELIVERIES"] = "1"
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/deadly", Reply(200, HTML, article_page(6), delay_s=20))
        server.route("/fine", Reply(200, HTML, article_page(7)))
        feed = server.route("/feed", Reply(200, RSS, rss(server, ["/deadly", "/fine"])))
        sources = sources_file(tmp_path / "s.yaml", {"f": feed})
        service = ingest_run.start("ingest", "--workers", "2", "--sources", str(sources), log=tmp_path / "ingest.log")
        try:
            deadline = time.monotonic() + 30
            while not server.requests_for("/deadly") and time.monotonic() < deadline:
                time.sleep(0.05)
            # The worker in the middle of /deadly is the one with a connection open to us.
            before = fetch_worker_pids(service.pid)
            assert len(before) == 2, (tmp_path / "ingest.log").read_text()
            for pid in before:
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 40
            while not dead_letters(ingest_run) and time.monotonic() < deadline:
                assert service.poll() is None, (tmp_path / "ingest.log").read_text()
                time.sleep(0.2)
            after = fetch_worker_pids(service.pid)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=60)
        fetches = len(server.requests_for("/deadly"))
    [dead] = dead_letters(ingest_run)
    assert dead.error_type == "worker_crashed" and dead.source_url == server.url("/deadly")
    assert fetches == 1
    assert len(after) == 2 and not set(after) & set(before), "both workers were replaced; the service ran on"
    assert [a.canonical_url for a in published(ingest_run)] == [server.url("/fine")]


@pytest.fixture
def worker_settings(ingest_run: NewswireRun) -> Iterator[Settings]:
    """Settings for a fetch worker built in this process, against the same deployment."""
    saved = dict(os.environ)
    os.environ.update(ingest_run.env)
    try:
        yield load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_an_exception_inside_extraction_is_an_internal_error_not_a_non_article(
    ingest_run: NewswireRun, worker_settings: Settings
) -> None:
    def extractor_with_a_bug(html: str, url: str | None = None) -> object:
        raise OverflowError("date value out of range")

    config = wiring.ingest_config(worker_settings)
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        server.route("/story", Reply(200, HTML, article_page(4)))
        entry = FeedEntry(
            canonical_url=server.url("/story"),
            url=server.url("/story"),
            feed_url=server.url("/feed"),
            source_name="f",
            found_in=FeedKind.RSS,
        )
        with config.publisher() as publisher:
            publisher.publish_fetch_task(entry)
        stop = threading.Event()
        http = HttpClient(worker_settings.fetch)
        schedule = Schedule(config.state_file)
        archive = PageArchive(config.archive_dir, max_file_bytes=config.archive_max_file_bytes)
        try:
            with config.publisher() as publisher:
                fetcher = PageFetcher(config, http, archive, extract=extractor_with_a_bug)  # type: ignore[arg-type]
                worker = FetchWorker(config, fetcher, publisher, schedule, on_event=lambda event: stop.set())
                give_up = threading.Timer(30, stop.set)
                give_up.start()
                try:
                    counts = worker.run(stop)
                finally:
                    give_up.cancel()
                    worker.close()
        finally:
            archive.close()
            schedule.close()
            http.close()
    [dead] = dead_letters(ingest_run)
    assert counts.by_source["f"]["internal_error"] == 1
    assert dead.error_type == "internal_error" and dead.stage == "extract"
    assert "OverflowError: date value out of range" in dead.error and "extractor_with_a_bug" in dead.error
    assert not published(ingest_run)


def test_a_page_source_is_labelled_page(ingest_run: NewswireRun, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        server.route("/robots.txt", Reply(404))
        page = server.route("/one-article", Reply(200, HTML, article_page(5)))
        ingest_run.command("ingest", "--once", "--sources", str(sources_file(tmp_path / "s.yaml", {"p": page}, "page")))
    [article] = published(ingest_run)
    assert article.source.kind is SourceKind.PAGE
