"""The one HTTP client every connector fetches through: feeds, sitemaps, pages and robots.txt.

``HttpClient.fetch`` sends GET requests over pooled keep-alive connections and follows
redirects itself, so that every hop passes the same checks in the same order: scheme and
address policy (after DNS resolution, connecting to the vetted address), robots.txt, the
per-host politeness slot, then the request under connect, read and whole-fetch deadlines,
reading the body through a size cap on the decompressed bytes. 5xx, 429, timeouts and
connection errors are retried with exponential backoff and jitter, honouring Retry-After.

It must never raise for a network or HTTP problem: every fetch returns one ``FetchResult``
whose ``outcome`` says how it ended and whose ``detail`` says, for a person, which URL and
which limit and what to change. It must never read the environment: every limit comes from
the ``FetchSettings`` it is built with. One client is meant to be shared by all the threads
of a process, since the politeness gate and the robots.txt cache are only correct if shared.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ResolveTimeout
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urldefrag, urljoin

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse, HTTPResponse

from connectors.http.addresses import (
    AddressPolicy,
    AddressRefused,
    IPAddress,
    Target,
    parse_target,
    resolve,
)
from connectors.http.charsets import decode_text, is_textual, parse_content_type
from connectors.http.decompression import ACCEPT_ENCODING, DecompressionError, decoder_for
from connectors.http.host_ledger import HostLedger
from connectors.http.limits import FetchSettings
from connectors.http.outcomes import FetchResult, Outcome, Redirect, Refusal, Timings, Validators
from connectors.http.politeness import HostGate
from connectors.http.robots import RobotsCache

DEFAULT_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ROBOTS_ACCEPT = "text/plain,*/*;q=0.5"
# RFC 9309 asks crawlers to follow at least five redirects for robots.txt.
ROBOTS_MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BLOCKED_STATUSES = frozenset({401, 403, 451})
# 501 and 505 say the server will never do it, so retrying cannot help; 520-524 are the
# "origin unreachable" family a CDN answers with in front of a struggling publisher.
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 507, 508, 509, 520, 521, 522, 523, 524})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_READ_SIZE = 64 * 1024
_RESOLVER_THREADS = 4


class HttpClient:
    """Fetches URLs politely and safely; thread-safe, and meant to be shared."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        rng: random.Random | None = None,
        shared_state: Path | None = None,
        on_result: Callable[[FetchResult], None] | None = None,
    ) -> None:
        """``shared_state``: a SQLite file through which every process of a deployment shares one
        politeness budget and one robots.txt cache per host (see ``host_ledger``). ``on_result``
        is told every finished fetch (its bytes, waits and outcome)."""
        self._settings = settings
        self._on_result = on_result
        self._rng = rng or random.Random()
        self._addresses = AddressPolicy(settings.allow_addresses)
        self._ledger = HostLedger(shared_state) if shared_state is not None else None
        self._gate = HostGate(settings.per_host_interval_s, settings.per_host_concurrency, self._ledger)
        self._robots = RobotsCache(settings.robots_ttl_s, settings.robots_error_ttl_s, self._ledger)
        self._pools = PoolManager(
            num_pools=settings.max_hosts_pooled, maxsize=settings.connections_per_host, block=False
        )
        self._pools.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        # getaddrinfo has no timeout of its own; running it on a thread lets a fetch stop waiting.
        self._resolver = ThreadPoolExecutor(max_workers=_RESOLVER_THREADS, thread_name_prefix="newswire-dns")

    def fetch(self, url: str, *, validators: Validators | None = None, accept: str = DEFAULT_ACCEPT) -> FetchResult:
        """GET ``url``; with ``validators`` from an earlier result, a conditional GET."""
        run = _Run(deadline=time.monotonic() + self._settings.total_timeout_s)
        result = self._follow(
            url,
            run,
            validators=validators or Validators(),
            accept=accept,
            max_body_bytes=self._settings.max_body_bytes,
            max_redirects=self._settings.max_redirects,
            check_robots=self._settings.respect_robots_txt,
        )
        if self._on_result is not None:
            self._on_result(result)
        return result

    def host_wait_s(self, url: str) -> float:
        """Seconds a fetch of ``url`` would now wait for its host's turn (politeness, Crawl-delay,
        a Retry-After another fetch was given), in this process or, with a ledger, any; 0 for a
        URL that cannot be fetched at all (its fetch will say why)."""
        try:
            target = parse_target(url)
        except AddressRefused:
            return 0.0
        return self._gate.wait_s(target.host)

    def close(self) -> None:
        self._pools.clear()
        self._resolver.shutdown(wait=False, cancel_futures=True)
        if self._ledger is not None:
            self._ledger.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _follow(
        self,
        url: str,
        run: _Run,
        *,
        validators: Validators,
        accept: str,
        max_body_bytes: int,
        max_redirects: int,
        check_robots: bool,
    ) -> FetchResult:
        current = url
        seen = {urldefrag(url).url}
        while True:
            try:
                target = parse_target(current)
            except AddressRefused as refused:
                return run.result(url, current, Outcome.REFUSED_BY_POLICY, refusal=Refusal.SCHEME, detail=str(refused))
            crawl_delay: float | None = None
            if check_robots:
                refusal, crawl_delay = self._robots_check(target, run)
                if refusal is not None:
                    outcome, detail, why = refusal
                    return run.result(url, current, outcome, refusal=why, detail=detail)
            exchange = self._with_retries(
                target, run, self._request_headers(target, validators, accept), max_body_bytes, crawl_delay
            )
            location = exchange.headers.get("location")
            if exchange.outcome is not None or exchange.status not in _REDIRECT_STATUSES or not location:
                return self._finished(url, current, run, exchange, validators)
            next_url = urljoin(current, location.strip())
            if len(run.redirects) >= max_redirects:
                return run.result(
                    url, current, Outcome.REDIRECTED, exchange=exchange,
                    detail=f"{url} redirected more than {max_redirects} times (next hop {current} -> {next_url}); "
                    "raise fetch.max_redirects if the publisher really needs more",
                )  # fmt: skip
            if urldefrag(next_url).url in seen:
                chain = " -> ".join([r.url for r in run.redirects] + [current, next_url])
                return run.result(url, current, Outcome.REDIRECTED, exchange=exchange, detail=f"redirect loop: {chain}")
            run.redirects.append(Redirect(url=current, status=exchange.status or 0, location=next_url))
            seen.add(urldefrag(next_url).url)
            current = next_url

    def _robots_check(self, target: Target, run: _Run) -> tuple[tuple[Outcome, str, Refusal] | None, float | None]:
        """Why robots.txt stops this fetch (outcome, detail, refusal), or None; and its Crawl-delay."""
        settings = self._settings

        def fetch_robots(robots_url: str) -> FetchResult:
            # Same deadline as the page; its own timings, so the page's attempts stay the page's.
            robots_run = _Run(deadline=run.deadline)
            result = self._follow(
                robots_url,
                robots_run,
                validators=Validators(),
                accept=ROBOTS_ACCEPT,
                max_body_bytes=settings.robots_max_bytes,
                max_redirects=ROBOTS_MAX_REDIRECTS,
                check_robots=False,
            )
            run.queued(robots_run.queued_s)
            return result

        rules = self._robots.rules_for(target.origin, fetch_robots)
        delay = rules.crawl_delay(settings.robots_agent)
        crawl_delay = min(delay, settings.robots_crawl_delay_max_s) if delay is not None else None
        if rules.unreachable_detail is not None:
            outcome = rules.fetch_outcome
            if outcome not in (Outcome.TIMED_OUT, Outcome.UNREACHABLE):
                outcome = Outcome.REFUSED_BY_POLICY
            return (
                outcome,
                f"{target.url} was not fetched: {target.origin}/robots.txt could not be fetched "
                f"({rules.unreachable_detail}); RFC 9309 says to assume everything is disallowed until it can be, "
                f"tried again after fetch.robots_error_ttl_s={settings.robots_error_ttl_s:g}s",
                Refusal.ROBOTS_UNAVAILABLE,
            ), crawl_delay
        if not rules.allows(target.url, settings.robots_agent):
            return (
                Outcome.REFUSED_BY_POLICY,
                f"{target.origin}/robots.txt disallows {target.request_target} for user agent "
                f"{settings.robots_agent!r}; no request was made for the page",
                Refusal.ROBOTS_TXT,
            ), crawl_delay
        return None, crawl_delay

    def _request_headers(self, target: Target, validators: Validators, accept: str) -> dict[str, str]:
        headers = {
            "Host": target.host_header,
            "User-Agent": self._settings.user_agent,
            "Accept": accept,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if validators.etag is not None:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified is not None:
            headers["If-Modified-Since"] = validators.last_modified
        return headers

    def _with_retries(
        self, target: Target, run: _Run, headers: dict[str, str], max_body_bytes: int, crawl_delay: float | None
    ) -> _Exchange:
        settings = self._settings
        attempt = 0
        while True:
            exchange = self._exchange(target, run, headers, max_body_bytes, attempt, crawl_delay)
            if not exchange.retryable:
                return exchange
            retry_after = exchange.retry_after_s
            if retry_after is not None and retry_after > settings.retry_after_max_s:
                exchange.outcome = Outcome.RATE_LIMITED
                exchange.detail = (
                    f"{target.url} answered {exchange.status} asking us to wait {retry_after:.0f}s (Retry-After), "
                    f"more than fetch.retry_after_max_s={settings.retry_after_max_s:g}s; reschedule it"
                )
                self._gate.defer(target.host, retry_after)
                return exchange
            if attempt >= settings.max_retries:
                exchange.note(f"gave up after {attempt + 1} attempts (fetch.max_retries={settings.max_retries})")
                return exchange
            if retry_after is not None:
                wait = retry_after
                # Other threads fetching from this host must hold back too.
                self._gate.defer(target.host, wait)
            else:
                ceiling = min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2**attempt)
                wait = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
            if wait >= run.remaining():
                exchange.note(
                    f"a retry in {wait:.1f}s would pass the fetch deadline "
                    f"(fetch.total_timeout_s={settings.total_timeout_s:g}s)"
                )
                return exchange
            time.sleep(wait)
            run.retry_wait_s += wait
            attempt += 1

    def _exchange(
        self,
        target: Target,
        run: _Run,
        headers: dict[str, str],
        max_body_bytes: int,
        attempt: int,
        crawl_delay: float | None,
    ) -> _Exchange:
        """One request and its response, or why there was none."""
        try:
            self._addresses.check_host(target)
            addresses = self._resolve(target, run)
            self._addresses.check_addresses(target, addresses)
        except AddressRefused as refused:
            return _Exchange.failed(Outcome.REFUSED_BY_POLICY, str(refused), refusal=Refusal.ADDRESS)
        except _Failure as failure:
            return failure.exchange
        # Every address is tried in turn until one takes the connection (a host often has an IPv6
        # answer that does not route here); each retry starts one further along.
        start = attempt % len(addresses)
        ordered = addresses[start:] + addresses[:start]
        with self._gate.slot(target.host, crawl_delay) as queued_s:
            run.queued(queued_s)
            run.attempts += 1
            remaining = run.remaining()
            if remaining <= 0:
                return _Exchange.failed(Outcome.TIMED_OUT, self._deadline_detail(target, 0))
            watch = _Watch()
            timer = threading.Timer(remaining, watch.expire)
            timer.daemon = True
            timer.start()
            token = _current_watch.set(watch)
            try:
                for address in ordered:
                    exchange = self._request(target, address, headers, max_body_bytes, run, watch)
                    if not exchange.connect_failed or watch.expired:
                        break
                return exchange
            finally:
                watch.finish()
                timer.cancel()
                _current_watch.reset(token)

    def _resolve(self, target: Target, run: _Run) -> list[IPAddress]:
        wait = max(0.001, min(self._settings.connect_timeout_s, run.remaining()))
        future = self._resolver.submit(resolve, target.host, target.port)
        try:
            return future.result(timeout=wait)
        except ResolveTimeout:
            raise _Failure(
                _Exchange.failed(
                    Outcome.TIMED_OUT,
                    f"resolving {target.host} for {target.url} took longer than {wait:.1f}s (fetch.connect_timeout_s)",
                    retryable=True,
                )
            ) from None
        except OSError as error:
            temporary = isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN
            raise _Failure(
                _Exchange.failed(
                    Outcome.UNREACHABLE,
                    f"{target.host} (from {target.url}) could not be resolved: {error}",
                    retryable=temporary,
                )
            ) from None

    def _request(
        self,
        target: Target,
        address: IPAddress,
        headers: dict[str, str],
        max_body_bytes: int,
        run: _Run,
        watch: _Watch,
    ) -> _Exchange:
        settings = self._settings
        pool_kwargs: dict[str, Any] = {}
        if target.scheme == "https":
            # We connect to the vetted address, but TLS must still check the name in the URL.
            pool_kwargs = {"server_hostname": target.host, "assert_hostname": target.host}
        pool = self._pools.connection_from_host(str(address), target.port, target.scheme, pool_kwargs=pool_kwargs)
        remaining = run.remaining()
        timeout = Timeout(
            connect=min(settings.connect_timeout_s, remaining), read=min(settings.read_timeout_s, remaining)
        )
        try:
            response = pool.urlopen(
                "GET",
                target.request_target,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
                release_conn=False,
                timeout=timeout,
            )
        except (HTTPError, http.client.HTTPException, OSError) as error:
            return self._network_failure(target, address, error, run, watch, wire_bytes=0, headers_read=False)
        exchange = _Exchange(status=response.status, headers=_header_dict(response))
        complete = False
        try:
            complete = self._read_body(target, response, exchange, max_body_bytes, watch)
        except (HTTPError, http.client.HTTPException, OSError) as error:
            failure = self._network_failure(target, address, error, run, watch, exchange.wire_bytes, headers_read=True)
            failure.status, failure.headers = exchange.status, exchange.headers
            return failure
        finally:
            # Past this point the deadline timer must not touch the socket: it goes back to the pool.
            watch.finish()
            if not complete:
                # Never hand a half-read connection back to the pool.
                response.close()
            response.release_conn()
        if watch.expired:
            exchange.outcome = Outcome.TIMED_OUT
            exchange.detail = self._deadline_detail(target, exchange.wire_bytes)
            exchange.retryable = False
        return exchange

    def _read_body(
        self, target: Target, response: BaseHTTPResponse, exchange: _Exchange, max_body_bytes: int, watch: _Watch
    ) -> bool:
        """Reads the body into ``exchange`` under the cap; True if it was read to the end."""
        status = exchange.status or 0
        exchange.retry_after_s = (
            retry_after_seconds(exchange.headers.get("retry-after")) if status in _RETRY_AFTER_STATUSES else None
        )
        exchange.retryable = status in _RETRYABLE_STATUSES
        if status == 304 or 100 <= status < 200 or status == 204:
            return True
        declared = exchange.headers.get("content-length", "")
        if 200 <= status < 300 and declared.isdigit() and int(declared) > max_body_bytes:
            exchange.outcome = Outcome.TOO_LARGE
            exchange.detail = (
                f"{target.url} declares Content-Length {int(declared)}, more than "
                f"fetch.max_body_bytes={max_body_bytes}; nothing was read"
            )
            return False
        try:
            decoder = decoder_for(exchange.headers.get("content-encoding"))
        except DecompressionError as error:
            exchange.outcome, exchange.detail = Outcome.HTTP_ERROR, f"{target.url}: {error}"
            return False
        parts: list[bytes] = []
        size = 0
        while not watch.expired:
            chunk = response.read1(_READ_SIZE, decode_content=False)
            if not chunk:
                break
            exchange.wire_bytes += len(chunk)
            while True:
                room = max_body_bytes - size
                try:
                    # One byte more than there is room for is how we learn the cap was passed.
                    expanded = decoder.decompress(chunk, room + 1)
                except DecompressionError as error:
                    exchange.outcome, exchange.detail = Outcome.HTTP_ERROR, f"{target.url}: {error}"
                    exchange.body = b"".join(parts)
                    return False
                chunk = b""
                size += len(expanded)
                parts.append(expanded[:room])
                if size > max_body_bytes:
                    exchange.body = b"".join(parts)
                    if 200 <= status < 300:
                        exchange.outcome = Outcome.TOO_LARGE
                        exchange.detail = (
                            f"{target.url} is larger than fetch.max_body_bytes={max_body_bytes} once decompressed; "
                            f"stopped after {exchange.wire_bytes} bytes off the wire"
                        )
                    # An oversized error page keeps its status outcome; only its body is cut short.
                    exchange.retryable = False
                    return False
                if not decoder.pending:
                    break
        exchange.body = b"".join(parts)
        return not watch.expired

    def _network_failure(
        self,
        target: Target,
        address: IPAddress,
        error: Exception,
        run: _Run,
        watch: _Watch,
        wire_bytes: int,
        headers_read: bool,
    ) -> _Exchange:
        settings = self._settings
        where = f"{target.url} ({address}:{target.port})"
        # Socket timeouts are cut to the time left, so one may fire at the deadline before the watch does.
        if watch.expired or run.remaining() <= 0:
            return _Exchange.failed(Outcome.TIMED_OUT, self._deadline_detail(target, wire_bytes), wire_bytes=wire_bytes)
        # urllib3 makes NewConnectionError (refused, unreachable) a subclass of ConnectTimeoutError.
        if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
            detail = f"connecting to {where} took longer than fetch.connect_timeout_s={settings.connect_timeout_s:g}s"
            failure = _Exchange.failed(Outcome.TIMED_OUT, detail, retryable=True, wire_bytes=wire_bytes)
            failure.connect_failed = True
            return failure
        if isinstance(error, ReadTimeoutError | TimeoutError):
            phase = "between two reads of the body" if headers_read else "before the response headers"
            detail = f"{where} was silent {phase} for longer than fetch.read_timeout_s={settings.read_timeout_s:g}s"
            return _Exchange.failed(Outcome.TIMED_OUT, detail, retryable=True, wire_bytes=wire_bytes)
        if isinstance(error, SSLError):
            return _Exchange.failed(Outcome.UNREACHABLE, f"TLS with {where} failed: {error}", wire_bytes=wire_bytes)
        phase = "while reading the body" if headers_read else "before a response"
        detail = f"{where} failed {phase}: {type(error).__name__}: {error}"
        failure = _Exchange.failed(Outcome.UNREACHABLE, detail, retryable=True, wire_bytes=wire_bytes)
        failure.connect_failed = isinstance(error, NewConnectionError)
        return failure

    def _deadline_detail(self, target: Target, wire_bytes: int) -> str:
        return (
            f"{target.url} took longer than fetch.total_timeout_s={self._settings.total_timeout_s:g}s in all "
            f"(redirects, retries and waits included); stopped after {wire_bytes} bytes off the wire"
        )

    def _finished(self, url: str, final_url: str, run: _Run, exchange: _Exchange, sent: Validators) -> FetchResult:
        status = exchange.status
        outcome = exchange.outcome
        detail = exchange.detail
        if outcome is None:
            assert status is not None
            outcome, default_detail = _outcome_of_status(status, exchange.retry_after_s)
            detail = detail or (f"{final_url} answered {status}: {default_detail}" if default_detail else None)
        media_type, charset = parse_content_type(exchange.headers.get("content-type"))
        text = encoding = encoding_source = None
        if exchange.body and outcome is not Outcome.TOO_LARGE and is_textual(media_type):
            decoded = decode_text(exchange.body, charset)
            text, encoding, encoding_source = decoded.text, decoded.encoding, decoded.source
        validators = Validators(
            etag=exchange.headers.get("etag") or (sent.etag if status == 304 else None),
            last_modified=exchange.headers.get("last-modified") or (sent.last_modified if status == 304 else None),
        )
        return run.result(
            url, final_url, outcome, exchange=exchange, detail=detail, text=text, encoding=encoding,
            encoding_source=encoding_source, content_type=media_type, validators=validators,
        )  # fmt: skip


def _outcome_of_status(status: int, retry_after_s: float | None) -> tuple[Outcome, str | None]:
    if 200 <= status < 300:
        return Outcome.OK, None
    if status == 304:
        return Outcome.NOT_MODIFIED, None
    if status in _BLOCKED_STATUSES:
        return Outcome.BLOCKED, "the server refuses us; check the User-Agent (fetch.user_agent) or ask the publisher"
    if status == 429:
        wait = f" and asks for {retry_after_s:.0f}s" if retry_after_s is not None else ""
        return Outcome.RATE_LIMITED, f"too many requests{wait}; slow down (fetch.per_host_interval_s) or reschedule"
    if 300 <= status < 400:
        return Outcome.REDIRECTED, "a redirect without a usable Location header"
    if 500 <= status < 600:
        return Outcome.HTTP_ERROR, "a server error that outlasted the retries (fetch.max_retries)"
    return Outcome.HTTP_ERROR, "the page is not there (or not for us); check the URL in sources.yaml"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header_dict(response: BaseHTTPResponse) -> dict[str, str]:
    # Repeated headers are joined with ", " (RFC 9110 section 5.3).
    return {name.lower(): response.headers[name] for name in response.headers}


@dataclass
class _Run:
    """The running totals of one fetch across its redirect hops and retries."""

    deadline: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    began: float = field(default_factory=time.monotonic)
    queued_s: float = 0.0
    retry_wait_s: float = 0.0
    attempts: int = 0
    redirects: list[Redirect] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def queued(self, seconds: float) -> None:
        # Waiting for our turn at a host is the caller's concurrency, not the server's slowness.
        self.queued_s += seconds
        self.deadline += seconds

    def result(
        self,
        url: str,
        final_url: str,
        outcome: Outcome,
        *,
        exchange: _Exchange | None = None,
        refusal: Refusal | None = None,
        detail: str | None = None,
        text: str | None = None,
        encoding: str | None = None,
        encoding_source: str | None = None,
        content_type: str | None = None,
        validators: Validators | None = None,
    ) -> FetchResult:
        timings = Timings(
            started_at=self.started_at,
            queued_s=self.queued_s,
            retry_wait_s=self.retry_wait_s,
            elapsed_s=time.monotonic() - self.began,
            attempts=self.attempts,
        )
        exchange = exchange or _Exchange()
        return FetchResult(
            url=url,
            final_url=final_url,
            outcome=outcome,
            timings=timings,
            status=exchange.status,
            headers=exchange.headers,
            body=exchange.body,
            text=text,
            encoding=encoding,
            encoding_source=encoding_source,
            content_type=content_type,
            validators=validators or Validators(),
            redirects=tuple(self.redirects),
            wire_bytes=exchange.wire_bytes,
            refusal=refusal or exchange.refusal,
            # A 503's Retry-After matters as much as a 429's to whoever reschedules the fetch.
            retry_after_s=exchange.retry_after_s if outcome in (Outcome.RATE_LIMITED, Outcome.HTTP_ERROR) else None,
            detail=detail if detail is not None else exchange.detail,
        )


@dataclass
class _Exchange:
    """One request's response, or the failure that stood in for it (outcome set)."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    wire_bytes: int = 0
    # Set when the exchange alone decides the fetch's outcome (a failure, a cap, a refusal).
    outcome: Outcome | None = None
    refusal: Refusal | None = None
    detail: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    # No connection could be made to the address tried: the next address of the host may do.
    connect_failed: bool = False

    @classmethod
    def failed(
        cls,
        outcome: Outcome,
        detail: str,
        *,
        refusal: Refusal | None = None,
        retryable: bool = False,
        wire_bytes: int = 0,
    ) -> _Exchange:
        return cls(outcome=outcome, detail=detail, refusal=refusal, retryable=retryable, wire_bytes=wire_bytes)

    def note(self, why_stopped: str) -> None:
        status = f"answered {self.status}" if self.outcome is None else str(self.outcome)
        self.detail = f"{self.detail or status}; {why_stopped}"


class _Failure(Exception):
    def __init__(self, exchange: _Exchange) -> None:
        super().__init__(exchange.detail)
        self.exchange = exchange


class _Watch:
    """Ends a request that outlives its fetch's deadline by shutting its socket down.

    Socket timeouts bound each read, not the whole response: a server dripping one byte of
    headers or body every few seconds would never trip them. A timer calls ``expire`` at the
    deadline, from its own thread, which wakes the blocked read with an end of stream.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._finished = False
        self.expired = False

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.expired:
                _shutdown(sock)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            self._sock = None


def _shutdown(sock: socket.socket) -> None:
    # A socket already closed has no read left to wake.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# The watch of the request running on this thread, read by the connection when it waits.
_current_watch: ContextVar[_Watch | None] = ContextVar("newswire_fetch_watch", default=None)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        watch = _current_watch.get()
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        watch = _current_watch.get()
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection
