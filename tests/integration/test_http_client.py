"""The HTTP layer against a real loopback server: limits, decoding, policy, retries and politeness.

Nothing is mocked: every test sends real requests to ``newswire.testing.http_server`` on 127.0.0.1 and
measures what it claims (bytes, waits, rates) at the server where that matters.
"""

from __future__ import annotations

import itertools
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import pytest

from connectors.http import FetchResult, HttpClient, Outcome, Refusal, Validators
from connectors.http.limits import FetchSettings
from newswire.testing.http_server import Drip, LoopbackServer, Reply, html, redirect

pytestmark = pytest.mark.integration

MiB = 1 << 20


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


def fetch_settings(**overrides: Any) -> FetchSettings:
    """Fast limits for tests; only the loopback address the server listens on is allowed."""
    fields: dict[str, Any] = {
        "allow_addresses": ("127.0.0.1/32",),
        "per_host_interval_s": 0.0,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "total_timeout_s": 5.0,
        "retry_backoff_s": 0.05,
        "retry_backoff_max_s": 0.2,
        "max_body_bytes": MiB,
    }
    fields.update(overrides)
    return FetchSettings(**fields)


def fetch(url: str, validators: Validators | None = None, **overrides: Any) -> FetchResult:
    with HttpClient(fetch_settings(**overrides)) as client:
        return client.fetch(url, validators=validators)


def test_a_page_is_fetched_over_one_pooled_connection(server: LoopbackServer) -> None:
    url = server.route("/article", html("<p>Hello</p>"))
    with HttpClient(fetch_settings()) as client:
        first = client.fetch(url)
        second = client.fetch(url)
    assert first.outcome is Outcome.OK and second.outcome is Outcome.OK
    assert first.text == "<p>Hello</p>" and first.status == 200 and first.content_type == "text/html"
    assert first.detail is None and first.final_url == url and first.timings.attempts == 1
    pages = server.requests_for("/article")
    assert pages[0].client == pages[1].client, "the second fetch should reuse the kept-alive connection"
    assert pages[0].headers["user-agent"].startswith("newswire/")
    assert pages[0].headers["accept-encoding"] == "gzip, deflate, br"


def test_a_host_name_is_resolved_vetted_and_sent_as_host(server: LoopbackServer) -> None:
    server.route("/named", html("<p>by name</p>"))
    # localhost may also answer ::1, where nothing listens: the client must move on to 127.0.0.1.
    result = fetch(f"http://localhost:{server.port}/named", allow_addresses=("localhost",), max_retries=0)
    assert result.outcome is Outcome.OK, result.detail
    assert server.requests_for("/named")[0].headers["host"] == f"localhost:{server.port}"


def test_a_body_over_the_cap_stops_while_streaming(server: LoopbackServer) -> None:
    # Close-delimited and endless: only the streaming cap can stop it.
    url = server.route("/huge", Reply(headers={"Content-Type": "text/html"}, drip=Drip(b"a" * 65536, 0.0)))
    result = fetch(url, max_body_bytes=MiB)
    assert result.outcome is Outcome.TOO_LARGE
    assert "fetch.max_body_bytes=1048576" in (result.detail or "")
    assert MiB < result.wire_bytes <= MiB + 65536
    assert len(result.body) == MiB and result.text is None
    # The server could only push what fit in the socket buffers before we hung up.
    assert server.requests_for("/huge")[0].bytes_sent < 32 * MiB


def test_a_declared_length_over_the_cap_is_not_read(server: LoopbackServer) -> None:
    url = server.route("/declared", Reply(body=b"b" * (2 * MiB)))
    result = fetch(url, max_body_bytes=MiB)
    assert result.outcome is Outcome.TOO_LARGE and result.wire_bytes == 0
    assert "Content-Length 2097152" in (result.detail or "")


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """256 MiB of zeros, gzip- and brotli-compressed to a few hundred KiB."""
    zeros = bytes(MiB)
    gzipper = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzipped = b"".join([gzipper.compress(zeros) for _ in range(256)] + [gzipper.flush()])
    return {"gzip": gzipped, "br": brotli.compress(bytes(256 * MiB), quality=1)}


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_compression_bomb_stops_at_the_cap_in_bounded_memory(
    server: LoopbackServer, bombs: dict[str, bytes], coding: str
) -> None:
    url = server.route("/bomb", Reply(headers={"Content-Encoding": coding}, body=bombs[coding]))
    with HttpClient(fetch_settings(max_body_bytes=MiB)) as client:
        tracemalloc.start()
        try:
            result = client.fetch(url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.outcome is Outcome.TOO_LARGE
    assert len(result.body) == MiB
    assert result.wire_bytes <= len(bombs[coding])
    assert peak < 16 * MiB, f"peak Python allocation {peak} bytes while expanding a 256 MiB bomb"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(headers={"Content-Type": "text/html"}, drip=Drip(b"<p>", 0.05)),
        Reply(delay_s=30),
    ],
    ids=["endless-body-drip", "headers-never-come"],
)
def test_an_endless_response_times_out_at_the_deadline(server: LoopbackServer, reply: Reply) -> None:
    url = server.route("/slow", reply)
    began = time.monotonic()
    # The read timeout alone would never fire: only the whole-fetch deadline can end these.
    result = fetch(url, total_timeout_s=1.5, read_timeout_s=5.0, max_retries=0)
    elapsed = time.monotonic() - began
    assert result.outcome is Outcome.TIMED_OUT, result.detail
    assert 1.5 <= elapsed < 1.5 + 0.5
    assert "fetch.total_timeout_s=1.5" in (result.detail or "")


@pytest.mark.parametrize(
    ("reply", "expected_text", "expected_encoding"),
    [
        (
            html("café “quoted” \u2013 naïve", charset_header="utf-8", encoding="cp1252"),
            "café “quoted” \u2013 naïve",
            "cp1252",
        ),
        (html("Zürich \u2013 Gödel", charset_header="iso-8859-1", encoding="utf-8"), "Zürich \u2013 Gödel", "utf-8"),
        (
            html('<meta charset="windows-1251"><p>Новости дня</p>', charset_header=None, encoding="cp1251"),
            '<meta charset="windows-1251"><p>Новости дня</p>',
            "cp1251",
        ),
        (
            Reply(headers={"Content-Type": "text/html; charset=latin-1"}, body="BOM wins: ü".encode("utf-16")),
            "BOM wins: ü",
            "utf-16-le",
        ),
    ],
    ids=["cp1252-declared-utf8", "utf8-declared-latin1", "meta-only", "bom-over-header"],
)
def test_a_wrongly_declared_charset_is_decoded_correctly(
    server: LoopbackServer, reply: Reply, expected_text: str, expected_encoding: str
) -> None:
    result = fetch(server.route("/page", reply))
    assert result.outcome is Outcome.OK
    assert result.text == expected_text
    assert result.encoding == expected_encoding


def test_redirects_are_followed_and_recorded(server: LoopbackServer) -> None:
    server.route("/old", redirect("/moved", 301))
    server.route("/moved", redirect(server.url("/new"), 302))
    server.route("/new", html("<p>here</p>"))
    result = fetch(server.url("/old"))
    assert result.outcome is Outcome.OK and result.text == "<p>here</p>"
    assert result.final_url == server.url("/new")
    assert [(hop.status, hop.location) for hop in result.redirects] == [
        (301, server.url("/moved")),
        (302, server.url("/new")),
    ]


def test_a_redirect_loop_ends_as_redirected(server: LoopbackServer) -> None:
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    result = fetch(server.url("/a"))
    assert result.outcome is Outcome.REDIRECTED
    assert "redirect loop" in (result.detail or "")
    assert len(server.requests_for("/a")) == 1 and len(server.requests_for("/b")) == 1


def test_too_many_redirects_end_as_redirected(server: LoopbackServer) -> None:
    for hop in range(5):
        server.route(f"/hop{hop}", redirect(f"/hop{hop + 1}"))
    result = fetch(server.url("/hop0"), max_redirects=3)
    assert result.outcome is Outcome.REDIRECTED
    assert "fetch.max_redirects" in (result.detail or "") and len(result.redirects) == 3


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.2:{port}/", "http://[::1]:{port}/", "ftp://x/"],
    ids=["cloud-metadata", "other-loopback", "ipv6-loopback", "other-scheme"],
)
def test_a_redirect_to_a_refused_address_is_not_followed(server: LoopbackServer, location: str) -> None:
    server.route("/out", redirect(location.format(port=server.port)))
    result = fetch(server.url("/out"))
    assert result.outcome is Outcome.REFUSED_BY_POLICY
    assert result.refusal in (Refusal.ADDRESS, Refusal.SCHEME)
    assert result.final_url == location.format(port=server.port)
    assert "fetch.allow_addresses" in (result.detail or "") or "scheme" in (result.detail or "")


def test_loopback_is_refused_without_the_allow_list(server: LoopbackServer) -> None:
    result = fetch(server.route("/page", html("x")), allow_addresses=())
    assert result.outcome is Outcome.REFUSED_BY_POLICY and result.refusal is Refusal.ADDRESS
    assert "loopback" in (result.detail or "")
    assert server.requests == [], "nothing may be sent to a refused address"


def test_retry_after_is_honoured_on_429(server: LoopbackServer) -> None:
    url = server.route("/busy", Reply(429, {"Retry-After": "1"}), html("<p>now</p>"))
    result = fetch(url)
    assert result.outcome is Outcome.OK and result.timings.attempts == 2
    first, second = server.requests_for("/busy")
    assert second.at - first.at >= 0.95


def test_a_retry_after_beyond_the_limit_ends_as_rate_limited(server: LoopbackServer) -> None:
    url = server.route("/busy", Reply(429, {"Retry-After": "120"}), html("<p>now</p>"))
    result = fetch(url, retry_after_max_s=5)
    assert result.outcome is Outcome.RATE_LIMITED and result.retry_after_s == 120
    assert "fetch.retry_after_max_s=5" in (result.detail or "")
    assert len(server.requests_for("/busy")) == 1


def test_a_503_is_retried_with_backoff(server: LoopbackServer) -> None:
    url = server.route("/flaky", Reply(503), Reply(503), html("<p>up</p>"))
    result = fetch(url, retry_backoff_s=0.2, retry_backoff_max_s=1.0, max_retries=2)
    assert result.outcome is Outcome.OK and result.timings.attempts == 3
    times = [request.at for request in server.requests_for("/flaky")]
    # Equal jitter: each wait lies in [ceiling/2, ceiling], the ceiling doubling from 0.2 s.
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2
    assert result.timings.retry_wait_s >= 0.3


def test_retries_are_bounded(server: LoopbackServer) -> None:
    url = server.route("/down", Reply(500))
    result = fetch(url, max_retries=2)
    assert result.outcome is Outcome.HTTP_ERROR and result.status == 500
    assert "fetch.max_retries=2" in (result.detail or "")
    assert len(server.requests_for("/down")) == 3


def test_a_closed_port_is_unreachable() -> None:
    with LoopbackServer() as closed:
        url = closed.url("/gone")
    result = fetch(url, max_retries=1)
    assert result.outcome is Outcome.UNREACHABLE and url in (result.detail or "")


def test_forbidden_is_blocked(server: LoopbackServer) -> None:
    result = fetch(server.route("/members", Reply(403)))
    assert result.outcome is Outcome.BLOCKED and "fetch.user_agent" in (result.detail or "")


def test_robots_txt_disallowing_the_path_stops_the_fetch_before_any_request(server: LoopbackServer) -> None:
    server.route("/robots.txt", Reply(body=b"User-agent: *\nDisallow: /private/\n"))
    server.route("/private/page", html("secret"))
    server.route("/public", html("hello"))
    with HttpClient(fetch_settings()) as client:
        refused = client.fetch(server.url("/private/page"))
        allowed = client.fetch(server.url("/public"))
    assert refused.outcome is Outcome.REFUSED_BY_POLICY and refused.refusal is Refusal.ROBOTS_TXT
    assert "/private/page" in (refused.detail or "") and "robots.txt" in (refused.detail or "")
    assert allowed.outcome is Outcome.OK
    assert server.requests_for("/private/page") == []
    assert len(server.requests_for("/robots.txt")) == 1, "robots.txt is cached per host"


def test_a_crawl_delay_slows_the_host_down(server: LoopbackServer) -> None:
    server.route("/robots.txt", Reply(body=b"User-agent: newswire\nCrawl-delay: 0.4\n"))
    urls = [server.route(f"/p{n}", html("x")) for n in range(2)]
    with HttpClient(fetch_settings(per_host_interval_s=0.0)) as client:
        assert all(client.fetch(url).ok for url in urls)
    first, second = (server.requests_for(f"/p{n}")[0].at for n in range(2))
    assert second - first >= 0.35


def test_an_unreachable_robots_txt_disallows_the_host(server: LoopbackServer) -> None:
    server.route("/robots.txt", Reply(500))
    server.route("/page", html("x"))
    result = fetch(server.url("/page"), max_retries=0)
    assert result.outcome is Outcome.REFUSED_BY_POLICY and result.refusal is Refusal.ROBOTS_UNAVAILABLE
    assert result.retryable, "a robots.txt that could not be fetched is the host's bad hour, not a final answer"
    assert "RFC 9309" in (result.detail or "") and server.requests_for("/page") == []


def test_conditional_get_ends_as_not_modified(server: LoopbackServer) -> None:
    last_modified = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = server.route(
        "/feed",
        Reply(headers={"ETag": '"v1"', "Last-Modified": last_modified}, body=b"<rss/>"),
        Reply(304, {"ETag": '"v1"'}),
    )
    with HttpClient(fetch_settings()) as client:
        first = client.fetch(url)
        second = client.fetch(url, validators=first.validators)
    assert first.validators == Validators(etag='"v1"', last_modified=last_modified)
    assert second.outcome is Outcome.NOT_MODIFIED and second.body == b""
    assert second.validators == first.validators
    conditional = server.requests_for("/feed")[1]
    assert conditional.headers["if-none-match"] == '"v1"'
    assert conditional.headers["if-modified-since"] == last_modified


def _deflate_raw(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("br", brotli.compress), ("deflate", zlib.compress), ("deflate", _deflate_raw), ("gzip", _gzip)],
    ids=["brotli", "deflate-zlib-wrapped", "deflate-raw", "gzip"],
)
def test_compressed_bodies_are_decoded(server: LoopbackServer, coding: str, compress: Callable[[bytes], bytes]) -> None:
    page = "<p>" + "Nachrichten über alles. " * 200 + "</p>"
    body = compress(page.encode())
    url = server.route(
        "/z", Reply(headers={"Content-Encoding": coding, "Content-Type": "text/html; charset=utf-8"}, body=body)
    )
    result = fetch(url)
    assert result.outcome is Outcome.OK, result.detail
    assert result.text == page and result.wire_bytes == len(body) < len(page)


def test_politeness_holds_across_threads(server: LoopbackServer) -> None:
    interval = 0.25
    urls = [server.route(f"/story/{n}", html(f"<p>{n}</p>")) for n in range(8)]
    results: list[FetchResult] = []
    with HttpClient(fetch_settings(per_host_interval_s=interval)) as client:

        def worker(share: list[str]) -> None:
            results.extend(client.fetch(url) for url in share)

        threads = [threading.Thread(target=worker, args=(urls[n::2],)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert [result.outcome for result in results] == [Outcome.OK] * len(urls)
    # robots.txt counts: it is a request to the same host.
    arrivals = sorted(request.at for request in server.requests)
    assert len(arrivals) == len(urls) + 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # The client spaces the starts exactly; the slack covers scheduling between send and arrival.
    assert min(gaps) >= interval - 0.05, f"requests closer than {interval}s apart: {gaps}"


def test_at_most_one_request_per_host_is_in_flight(server: LoopbackServer) -> None:
    urls = [server.route(f"/slow/{n}", Reply(delay_s=0.15, body=b"ok")) for n in range(4)]
    with HttpClient(fetch_settings(per_host_interval_s=0.0, respect_robots_txt=False)) as client:
        threads = [threading.Thread(target=lambda share=urls[n::2]: [client.fetch(u) for u in share]) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    arrivals = sorted(request.at for request in server.requests)
    assert len(arrivals) == 4
    # Each answer takes 0.15 s, so a second request in flight would arrive sooner than that.
    assert all(later - earlier >= 0.14 for earlier, later in itertools.pairwise(arrivals))
