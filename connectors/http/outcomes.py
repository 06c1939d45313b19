"""What one fetch ended in: the ``Outcome`` enum and the ``FetchResult`` every fetch returns.

A connector decides what to do with a page (publish it, reschedule, dead-letter it) from
``FetchResult.outcome`` and ``FetchResult.retryable`` alone, and shows a person
``FetchResult.detail``. Every outcome is either final (an article, not an article, blocked,
paywall, consent wall, 404/410, robots.txt disallows it: trying again cannot change it) or
retryable (timeout, connection error or reset, DNS failure, 429, 5xx, robots.txt that could
not be fetched: the publisher's bad hour, not the page). ``is_retryable`` is the one place
that decides which. This module holds data only; it must never do I/O or import the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """How a fetch ended. Exactly one per fetch."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    # The fetch stopped on a redirect it would not follow: a loop, too many hops, or no Location.
    REDIRECTED = "redirected"
    # The server refused us (401, 403, 451): retrying will not help without a change on our side.
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    TIMED_OUT = "timed_out"
    UNREACHABLE = "unreachable"
    REFUSED_BY_POLICY = "refused_by_policy"
    HTTP_ERROR = "http_error"
    # Set later by page classifiers, never by the HTTP layer.
    PAYWALLED = "paywalled"
    CONSENT_WALL = "consent_wall"
    SOFT_404 = "soft_404"
    NEEDS_JAVASCRIPT = "needs_javascript"
    NOT_AN_ARTICLE = "not_an_article"
    # Set by the ingest service, never by the HTTP layer: our own code raised on this page.
    INTERNAL_ERROR = "internal_error"
    # Set by the ingest service: retryable outcomes outlasted ingest.retry_max_attempts or age.
    GAVE_UP = "gave_up"
    # Set by the ingest service: the worker process died while handling the task, again and again.
    WORKER_CRASHED = "worker_crashed"


class Refusal(StrEnum):
    """Which of our own rules stopped a fetch that ended ``refused_by_policy``."""

    ROBOTS_TXT = "robots_txt"
    # robots.txt itself could not be fetched (5xx, 429, timeout): RFC 9309 says wait, not give up.
    ROBOTS_UNAVAILABLE = "robots_unavailable"
    ADDRESS = "address"
    SCHEME = "scheme"


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server gave us to ask "has it changed?" next time (conditional GET)."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True, slots=True)
class Redirect:
    """One hop that was followed: ``url`` answered ``status`` pointing at ``location``."""

    url: str
    status: int
    location: str


@dataclass(frozen=True, slots=True)
class Timings:
    started_at: datetime
    # Waiting for the per-host politeness slot; not counted against the fetch's deadline.
    queued_s: float = 0.0
    # Backoff and Retry-After sleeps between attempts.
    retry_wait_s: float = 0.0
    elapsed_s: float = 0.0
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Everything one fetch learned, whatever its outcome; the client never raises instead."""

    url: str
    final_url: str
    outcome: Outcome
    timings: Timings
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # The body after Content-Encoding was undone; empty unless something was read.
    body: bytes = b""
    # The body as text for textual content types, decoded whatever the page claims.
    text: str | None = None
    encoding: str | None = None
    # Which evidence gave the encoding: bom, header, meta, utf-8, detected or fallback.
    encoding_source: str | None = None
    content_type: str | None = None
    validators: Validators = Validators()
    redirects: tuple[Redirect, ...] = ()
    # Bytes taken off the wire (before decompression): what the server actually cost us.
    wire_bytes: int = 0
    refusal: Refusal | None = None
    # Seconds the server asked us to wait (Retry-After on a 429 or 503 that ended the fetch).
    retry_after_s: float | None = None
    # For a person: which URL, which limit, what to change. None when the outcome is ok.
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def retryable(self) -> bool:
        """Would the same fetch later likely end otherwise? (See ``is_retryable``.)"""
        return is_retryable(self.outcome, self.status, self.refusal)


# 501 and 505 say the server will never do it; 408 is the server timing out our request.
_FINAL_SERVER_ERRORS = frozenset({501, 505})
_RETRYABLE_OUTCOMES = frozenset({Outcome.TIMED_OUT, Outcome.UNREACHABLE, Outcome.RATE_LIMITED})


def is_retryable(outcome: Outcome, status: int | None, refusal: Refusal | None = None) -> bool:
    """True for the outcomes a later attempt can change: timeouts, connection errors and resets,
    DNS failures, 429, 5xx (but 501/505) and 408, and a robots.txt that could not be fetched.
    Everything else (articles, 4xx such as 404/410, blocks, walls, robots disallow) is final."""
    if outcome in _RETRYABLE_OUTCOMES:
        return True
    if outcome is Outcome.REFUSED_BY_POLICY:
        return refusal is Refusal.ROBOTS_UNAVAILABLE
    if outcome is Outcome.HTTP_ERROR and status is not None:
        return status == 408 or (500 <= status < 600 and status not in _FINAL_SERVER_ERRORS)
    return False
