"""Per-host politeness: a least interval between requests and a cap on requests in flight.

Publishers block crawlers that hammer them, and one blocked host can cost every source on
it. So every request the client sends (page, robots.txt, retry, redirect hop) first takes a
slot for its host here. The gate is shared by all threads using one client, so two threads
fetching from the same host together still keep to the configured rate.

Given a ``HostLedger``, the gate also reserves every start in it, so that the other processes
of the deployment (the poller, other fetch workers) keep to the same budget per host.

This module must never sleep while holding its lock, and never sends anything itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.http.host_ledger import HostLedger

# Idle host entries are forgotten once there are this many, so a crawl over many hosts does
# not grow the table forever.
_PRUNE_ABOVE = 1024


@dataclass
class _HostState:
    in_flight: int = 0
    # Monotonic time before which no new request to the host may start.
    next_start: float = 0.0


class HostGate:
    """Spaces requests per host by ``interval_s`` (from the start and from the end of the one
    before) and allows ``concurrency`` in flight."""

    def __init__(self, interval_s: float, concurrency: int, ledger: HostLedger | None = None) -> None:
        if interval_s < 0 or concurrency < 1:
            raise ValueError(f"interval_s must be >= 0 and concurrency >= 1, got {interval_s} and {concurrency}")
        self._interval_s = interval_s
        self._concurrency = concurrency
        self._hosts: dict[str, _HostState] = {}
        self._changed = threading.Condition()
        self._ledger = ledger

    @contextmanager
    def slot(self, host: str, interval_s: float | None = None) -> Iterator[float]:
        """Holds one of ``host``'s slots for the body of the ``with``; yields the seconds queued.

        ``interval_s`` replaces the gate's interval for this request when larger (a robots.txt
        Crawl-delay).
        """
        interval = max(self._interval_s, interval_s or 0.0)
        queued_s = self._acquire(host, interval)
        try:
            if self._ledger is not None:
                # Our slot in this process is held; now wait for the host's turn across processes.
                shared_wait = self._ledger.reserve(host, interval)
                if shared_wait > 0:
                    time.sleep(shared_wait)
                queued_s += shared_wait
            yield queued_s
        finally:
            self._release(host, interval)

    def defer(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts for ``seconds`` (the server asked us to back off)."""
        with self._changed:
            state = self._hosts.setdefault(host, _HostState())
            state.next_start = max(state.next_start, time.monotonic() + seconds)
        if self._ledger is not None:
            self._ledger.defer(host, seconds)

    def wait_s(self, host: str) -> float:
        """Seconds until a request to ``host`` could start, as things stand (nothing reserved)."""
        with self._changed:
            state = self._hosts.get(host)
            local = max(0.0, state.next_start - time.monotonic()) if state is not None else 0.0
        shared = self._ledger.wait_s(host) if self._ledger is not None else 0.0
        return max(local, shared)

    def _acquire(self, host: str, interval_s: float) -> float:
        began = time.monotonic()
        with self._changed:
            while True:
                # Looked up on every pass: pruning may have replaced the entry while we waited.
                state = self._hosts.setdefault(host, _HostState())
                now = time.monotonic()
                if state.in_flight < self._concurrency and now >= state.next_start:
                    state.in_flight += 1
                    state.next_start = now + interval_s
                    return now - began
                # Condition.wait releases the lock while sleeping; a release or defer wakes us early.
                self._changed.wait(timeout=max(state.next_start - now, 0.0) or None)

    def _release(self, host: str, interval_s: float) -> None:
        # Spacing is also counted from the end of a request: a request that left late (a busy
        # CPU, a slow connect) must not let the next one reach the server early.
        ended = time.monotonic()
        if self._ledger is not None:
            self._ledger.ended(host, interval_s)
        with self._changed:
            state = self._hosts[host]
            state.in_flight -= 1
            state.next_start = max(state.next_start, ended + interval_s)
            if len(self._hosts) > _PRUNE_ABOVE:
                now = time.monotonic()
                for name in [name for name, s in self._hosts.items() if s.in_flight == 0 and s.next_start < now]:
                    del self._hosts[name]
            self._changed.notify_all()
