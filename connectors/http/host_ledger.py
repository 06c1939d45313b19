"""Per-host politeness and robots.txt shared by every process on this machine: one SQLite file.

The ingest service runs a poller and one or more fetch-worker processes, and each process
has its own ``HttpClient``. Without a shared record, the poller's feed request and a
worker's first page request to the same host could start closer together than
``fetch.per_host_interval_s``, and robots.txt would be fetched once per process. So when a
client is given a ledger, every request start to a host is reserved here first (a
``BEGIN IMMEDIATE`` transaction makes the reservations of all processes take turns), a
Retry-After deferral holds back every process, and robots.txt is read from here before it
is fetched, and stored here once fetched.

Across fetch workers the ledger is a second line: fetch tasks are keyed by host, so all of a
host's pages sit on one partition of the fetch-task topic and are fetched by the one worker
that owns it; the ledger adds the poller (another process) and the moments of a rebalance,
when two workers may briefly both hold a host's tasks. It is a local file: processes on
other machines need their own partition ownership to stay polite, which the keying gives.

Times here are wall-clock (``time.time()``) because monotonic clocks are not comparable
between processes in general; a slot stored far ahead (a clock step) is clamped. This module
never sends a request and never sleeps: it says how long to wait.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.state_files import open_state_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS host_slots (host TEXT PRIMARY KEY, next_start REAL NOT NULL);
CREATE TABLE IF NOT EXISTS robots_txt (
    origin TEXT PRIMARY KEY, expires_at REAL NOT NULL, fetch_outcome TEXT NOT NULL,
    status INTEGER, body TEXT, unreachable_detail TEXT
);
"""
# No reservation may lie further ahead than this: a longer one comes from a clock step.
_LONGEST_WAIT_S = 3600.0


@dataclass(frozen=True)
class StoredRobots:
    """A robots.txt as one process fetched it, for the others to reuse until it expires."""

    origin: str
    # Wall-clock time after which it must be fetched again.
    expires_at: float
    fetch_outcome: str
    status: int | None
    body: str | None
    unreachable_detail: str | None


class HostLedger:
    """Reserves request starts per host and stores robots.txt, across processes; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_state_file(path)
        self._db.executescript(_SCHEMA)

    def reserve(self, host: str, interval_s: float) -> float:
        """Takes ``host``'s next start slot; returns the seconds to wait until it begins."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT next_start FROM host_slots WHERE host = ?", (host,)).fetchone()
                now = time.time()
                start = max(now, min(row[0], now + _LONGEST_WAIT_S)) if row else now
                self._db.execute(
                    "INSERT INTO host_slots (host, next_start) VALUES (?, ?)"
                    " ON CONFLICT (host) DO UPDATE SET next_start = excluded.next_start",
                    (host, start + interval_s),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return start - now

    def wait_s(self, host: str) -> float:
        """Seconds until ``host``'s next start slot, without taking it."""
        with self._lock:
            row = self._db.execute("SELECT next_start FROM host_slots WHERE host = ?", (host,)).fetchone()
        return max(0.0, min(row[0] - time.time(), _LONGEST_WAIT_S)) if row else 0.0

    def ended(self, host: str, interval_s: float) -> None:
        """A request to ``host`` just ended: the next starts no sooner than ``interval_s`` from now."""
        self.defer(host, interval_s)

    def defer(self, host: str, seconds: float) -> None:
        """No process starts a request to ``host`` for ``seconds`` (the server asked us to wait)."""
        until = time.time() + min(seconds, _LONGEST_WAIT_S)
        with self._lock:
            self._db.execute(
                "INSERT INTO host_slots (host, next_start) VALUES (?, ?)"
                " ON CONFLICT (host) DO UPDATE SET next_start = max(next_start, excluded.next_start)",
                (host, until),
            )

    def robots(self, origin: str) -> StoredRobots | None:
        """The robots.txt another process stored for ``origin``, if it has not expired."""
        with self._lock:
            row = self._db.execute(
                "SELECT expires_at, fetch_outcome, status, body, unreachable_detail FROM robots_txt WHERE origin = ?",
                (origin,),
            ).fetchone()
        if row is None or row[0] <= time.time():
            return None
        return StoredRobots(origin, row[0], row[1], row[2], row[3], row[4])

    def store_robots(self, robots: StoredRobots) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO robots_txt (origin, expires_at, fetch_outcome, status, body, unreachable_detail)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET expires_at = excluded.expires_at,"
                " fetch_outcome = excluded.fetch_outcome, status = excluded.status, body = excluded.body,"
                " unreachable_detail = excluded.unreachable_detail",
                (
                    robots.origin,
                    robots.expires_at,
                    robots.fetch_outcome,
                    robots.status,
                    robots.body,
                    robots.unreachable_detail,
                ),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
