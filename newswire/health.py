"""Liveness and readiness of a newswire service, and the one HTTP endpoint that serves them
beside its Prometheus metrics: ``/healthz``, ``/readyz`` and ``/metrics``.

A service object (the pipeline's ``MicroBatchService``, the ingest service) is handed
``Readiness.report`` as its ``health(check, ok, detail)`` callback and calls it whenever a
dependency changes state; probes (``Readiness.probe``) check the same names from outside on
an interval (broker reachable, sink writable, index open). ``/healthz`` says the process
answers; ``/readyz`` answers 200 only while every expected check has reported ok.
Readiness logs exactly one line per change of state of a check, never one per report.
It must never act on the service: it only records and tells.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Gauge, make_wsgi_app

log = logging.getLogger(__name__)

Probe = Callable[[], tuple[bool, str]]
HealthCallback = Callable[[str, bool, str], None]


@dataclass(frozen=True)
class CheckState:
    ok: bool
    detail: str
    since: float  # unix time of the last change of state


class Readiness:
    """The checks one service depends on, and their last reported states.

    A check can be told by two reporters: the service itself (``report``, its ``health``
    callback) and a probe (``probe``). It passes only while every reporter that has spoken
    says it passes, so a probe that finds the SQLite file writable cannot hide the write
    the service saw fail, nor the other way round."""

    SERVICE = "service"

    def __init__(self, service: str, expected: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self._expected = tuple(expected)
        self._reports: dict[str, dict[str, CheckState]] = {}  # check -> reporter -> state
        self._states: dict[str, CheckState] = {}  # check -> combined state
        self._lock = threading.Lock()
        self._started = time.time()
        self._gauge = Gauge(
            "newswire_ready",
            "1 while a service's dependency check passes, 0 while it fails (or has not reported yet).",
            ["service", "check"],
            registry=registry,
        )
        for check in self._expected:
            self._gauge.labels(service=service, check=check).set(0)

    def report(self, check: str, ok: bool, detail: str = "", *, reporter: str = SERVICE) -> None:
        """The ``health`` callback of the contract: one log line per change of state."""
        now = time.time()
        with self._lock:
            reports = self._reports.setdefault(check, {})
            reports[reporter] = CheckState(ok, detail, now)
            failing = [state for state in reports.values() if not state.ok]
            combined_ok = not failing
            combined_detail = "; ".join(s.detail for s in failing if s.detail) if failing else detail
            previous = self._states.get(check)
            changed = previous is None or previous.ok != combined_ok
            since = now if changed or previous is None else previous.since
            self._states[check] = CheckState(combined_ok, combined_detail, since)
        self._gauge.labels(service=self.service, check=check).set(1 if combined_ok else 0)
        if changed:
            level = logging.INFO if combined_ok else logging.WARNING
            log.log(
                level,
                f"{check} {'ready' if combined_ok else 'not ready'}",
                extra={"service": self.service, "check": check, "detail": combined_detail},
            )

    @property
    def ready(self) -> bool:
        states = self.states()
        return all(check in states and states[check].ok for check in self._expected) and all(
            s.ok for s in states.values()
        )

    def states(self) -> dict[str, CheckState]:
        with self._lock:
            return dict(self._states)

    def document(self) -> dict[str, Any]:
        states = self.states()
        checks = {name: {"ok": s.ok, "detail": s.detail, "since": s.since} for name, s in sorted(states.items())}
        for missing in self._expected:
            checks.setdefault(missing, {"ok": False, "detail": "not checked yet", "since": self._started})
        return {"service": self.service, "ready": self.ready, "checks": checks}

    def probe(self, check: str, probe: Probe, *, interval_s: float, stop: threading.Event) -> threading.Thread:
        """Run ``probe`` now and every ``interval_s`` in a thread, reporting its result as ``check``."""

        def loop() -> None:
            while True:
                try:
                    ok, detail = probe()
                except Exception as error:  # a probe that raises is a failed check, never a dead thread
                    ok, detail = False, f"{type(error).__name__}: {error}"
                self.report(check, ok, detail, reporter="probe")
                if stop.wait(interval_s):
                    return

        thread = threading.Thread(target=loop, name=f"newswire-probe-{check}", daemon=True)
        thread.start()
        return thread


# --- probes --------------------------------------------------------------------------------


def broker_probe(consumer_config: Mapping[str, Any], topic: str) -> Probe:
    """The broker answers and ``topic`` exists."""

    def probe() -> tuple[bool, str]:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(**{**consumer_config, "request_timeout_ms": 5_000}, group_id=None)
        except KafkaError as error:
            return False, f"broker {consumer_config.get('bootstrap_servers')} unreachable: {error}"
        try:
            partitions = consumer.partitions_for_topic(topic)
        finally:
            consumer.close()
        if not partitions:
            return False, f"topic {topic!r} does not exist; run `newswire topics create`"
        return True, f"{len(partitions)} partition(s) of {topic}"

    return probe


def sqlite_writable_probe(path: Path, what: str, *, stuck_after_s: float = 60.0) -> Probe:
    """The SQLite file at ``path`` can take a write lock now (it is created if missing).

    ``BEGIN IMMEDIATE`` then ``ROLLBACK``: nothing is written, but a full disk, a read-only
    directory or a writer stuck holding the lock all show. The service's own transactions hold
    that lock for a moment on every batch: a lock is "busy", not "not ready", until it has been
    held across probes for ``stuck_after_s``."""
    locked_since: list[float | None] = [None]

    def probe() -> tuple[bool, str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=0.5)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                return False, f"{what} at {path} is not writable: {error}"
            now = time.monotonic()
            since = locked_since[0] = locked_since[0] or now
            held = now - since
            if held < stuck_after_s:
                return True, f"{what} at {path} busy: a write holds its lock ({held:.0f} s so far)"
            return False, f"{what} at {path} has been locked for {held:.0f} s: a writer is stuck holding it"
        except sqlite3.Error as error:
            return False, f"{what} at {path} is not writable: {error}"
        finally:
            db.close()
        locked_since[0] = None
        return True, f"{what} at {path} writable"

    return probe


def sqlite_readable_probe(path: Path, what: str) -> Probe:
    def probe() -> tuple[bool, str]:
        if not path.exists():
            return False, f"no {what} at {path} yet; run the pipeline first"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2) as db:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return True, f"{what} at {path} readable"

    return probe


def directory_writable_probe(path: Path, what: str) -> Probe:
    def probe() -> tuple[bool, str]:
        path.mkdir(parents=True, exist_ok=True)
        marker = path / ".newswire-ready"
        try:
            marker.write_bytes(b"")
            marker.unlink()
        except OSError as error:
            return False, f"{what} {path} is not writable: {error}"
        return True, f"{what} {path} writable"

    return probe


# --- the endpoint --------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


class ServiceEndpoint:
    """``/metrics`` (the registry), ``/healthz`` and ``/readyz`` on one port, in a thread."""

    def __init__(self, registry: CollectorRegistry, readiness: Readiness) -> None:
        self._metrics = make_wsgi_app(registry)
        self._readiness = readiness
        self._server: WSGIServer | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes] | list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            return _json(start_response, 200, {"service": self._readiness.service, "alive": True})
        if path == "/readyz":
            document = self._readiness.document()
            return _json(start_response, 200 if document["ready"] else 503, document)
        if path in ("/metrics", "/"):
            result: Iterator[bytes] = self._metrics(environ, start_response)
            return result
        return _json(start_response, 404, {"error": f"no {path}; try /metrics, /healthz or /readyz"})

    def serve(self, host: str, port: int) -> int:
        """Start serving; returns the port (``port`` 0 picks a free one)."""
        self._server = make_server(host, port, self, _ThreadingWSGIServer, handler_class=_QuietHandler)
        threading.Thread(target=self._server.serve_forever, name="newswire-endpoint", daemon=True).start()
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _json(start_response: Callable[..., Any], status: int, document: Mapping[str, Any]) -> list[bytes]:
    reasons = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
    body = json.dumps(document, indent=2).encode()
    start_response(
        f"{status} {reasons[status]}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
