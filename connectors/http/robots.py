"""robots.txt: what a fetched robots.txt allows, and a per-origin cache of it with a TTL.

The rules follow RFC 9309: a robots.txt that is missing or refused (4xx) allows everything;
one that cannot be fetched (5xx, 429, timeout, network error) disallows everything until
``FetchSettings.robots_error_ttl_s`` has passed and it is tried again. Parsing (groups,
wildcards, longest match, Crawl-delay) is Protego's.

This module never fetches anything itself: the client hands ``RobotsCache.rules_for`` a
function that fetches robots.txt through the same politeness and address checks as any page.
Given a ``HostLedger``, the cache reads robots.txt that another process of the deployment
fetched before fetching it, and stores what it fetches for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego

from connectors.http.host_ledger import HostLedger, StoredRobots
from connectors.http.outcomes import FetchResult, Outcome

# Expired entries are dropped once the cache holds this many origins.
_PRUNE_ABOVE = 4096


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What one origin's robots.txt says, and how we came to know it."""

    origin: str
    # The outcome of fetching robots.txt itself (ok, http_error for a 404, timed_out...).
    fetch_outcome: Outcome
    status: int | None
    expires_at: float
    parsed: Protego | None = None
    # Set when robots.txt could not be fetched: RFC 9309 then asks for a complete disallow.
    unreachable_detail: str | None = None

    def allows(self, url: str, agent: str) -> bool:
        if self.unreachable_detail is not None:
            return False
        if self.parsed is None:
            return True
        return bool(self.parsed.can_fetch(url, agent))

    def crawl_delay(self, agent: str) -> float | None:
        if self.parsed is None:
            return None
        delay = self.parsed.crawl_delay(agent)
        return float(delay) if delay is not None else None


def rules_from_fetch(origin: str, result: FetchResult, ttl_s: float, error_ttl_s: float) -> RobotsRules:
    """Reads a robots.txt fetch the RFC 9309 way."""
    now = time.monotonic()
    status = result.status
    if result.outcome in (Outcome.OK, Outcome.TOO_LARGE) and status is not None and 200 <= status < 300:
        # A too-large robots.txt is parsed as far as it was read (the RFC asks for 500 KiB at least).
        text = result.body.decode("utf-8", errors="replace")
        return RobotsRules(origin, result.outcome, status, now + ttl_s, parsed=Protego.parse(text))
    unavailable = status is not None and 400 <= status < 500 and status != 429
    if unavailable or result.outcome in (Outcome.REDIRECTED, Outcome.REFUSED_BY_POLICY):
        return RobotsRules(origin, result.outcome, status, now + ttl_s)
    detail = result.detail or f"{result.outcome} (status {status})"
    return RobotsRules(origin, result.outcome, status, now + error_ttl_s, unreachable_detail=detail)


class RobotsCache:
    """robots.txt rules per origin, fetched once per TTL even when many threads ask together."""

    def __init__(self, ttl_s: float, error_ttl_s: float, ledger: HostLedger | None = None) -> None:
        self._ledger = ledger
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self._rules: dict[str, RobotsRules] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def rules_for(self, origin: str, fetch_robots: Callable[[str], FetchResult]) -> RobotsRules:
        """The cached rules for ``origin``, fetching ``origin/robots.txt`` if none are fresh."""
        cached = self._fresh(origin)
        if cached is not None:
            return cached
        with self._lock:
            origin_lock = self._fetching.setdefault(origin, threading.Lock())
        # Other threads asking for the same origin wait here and then find the fresh entry.
        with origin_lock:
            cached = self._fresh(origin)
            if cached is not None:
                return cached
            stored = self._ledger.robots(origin) if self._ledger is not None else None
            if stored is not None:
                rules = _rules_from_stored(stored)
            else:
                result = fetch_robots(f"{origin}/robots.txt")
                rules = rules_from_fetch(origin, result, self._ttl_s, self._error_ttl_s)
                if self._ledger is not None:
                    self._ledger.store_robots(_stored(rules, result))
            with self._lock:
                self._rules[origin] = rules
                if len(self._rules) > _PRUNE_ABOVE:
                    now = time.monotonic()
                    for name in [name for name, r in self._rules.items() if r.expires_at <= now]:
                        del self._rules[name]
                        self._fetching.pop(name, None)
            return rules

    def _fresh(self, origin: str) -> RobotsRules | None:
        with self._lock:
            rules = self._rules.get(origin)
        if rules is not None and rules.expires_at > time.monotonic():
            return rules
        return None


def _stored(rules: RobotsRules, result: FetchResult) -> StoredRobots:
    return StoredRobots(
        origin=rules.origin,
        expires_at=time.time() + (rules.expires_at - time.monotonic()),
        fetch_outcome=rules.fetch_outcome.value,
        status=rules.status,
        body=result.body.decode("utf-8", errors="replace") if rules.parsed is not None else None,
        unreachable_detail=rules.unreachable_detail,
    )


def _rules_from_stored(stored: StoredRobots) -> RobotsRules:
    return RobotsRules(
        origin=stored.origin,
        fetch_outcome=Outcome(stored.fetch_outcome),
        status=stored.status,
        expires_at=time.monotonic() + (stored.expires_at - time.time()),
        parsed=Protego.parse(stored.body) if stored.body is not None else None,
        unreachable_detail=stored.unreachable_detail,
    )
