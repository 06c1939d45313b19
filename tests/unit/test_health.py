"""Readiness (the health callback contract) and the endpoint serving /healthz, /readyz, /metrics."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from newswire.health import Readiness, ServiceEndpoint, directory_writable_probe, sqlite_writable_probe


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_ready_only_when_every_expected_check_has_reported_ok() -> None:
    readiness = Readiness("pipeline", ["broker", "index"])
    assert not readiness.ready
    readiness.report("broker", True, "3 partitions")
    assert not readiness.ready, "index has not reported yet"
    readiness.report("index", True, "")
    assert readiness.ready
    readiness.report("sink:postgres", False, "connection refused")
    assert not readiness.ready, "a failing check the service reported counts too"
    assert readiness.document()["checks"]["sink:postgres"] == {
        "ok": False,
        "detail": "connection refused",
        "since": readiness.states()["sink:postgres"].since,
    }


def test_one_log_line_per_change_of_state(caplog: pytest.LogCaptureFixture) -> None:
    readiness = Readiness("pipeline", ["broker"])
    with caplog.at_level(logging.INFO, logger="newswire.health"):
        for ok in (True, True, True, False, False, True):
            readiness.report("broker", ok, "detail")
    assert [r.getMessage() for r in caplog.records] == ["broker ready", "broker not ready", "broker ready"]


def test_the_endpoint_serves_health_readiness_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("newswire_example_total", "An example.", registry=registry).inc(3)
    readiness = Readiness("ingest", ["broker"], registry)
    endpoint = ServiceEndpoint(registry, readiness)
    port = endpoint.serve("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        assert get(base + "/healthz") == (200, json.dumps({"service": "ingest", "alive": True}, indent=2))
        status, body = get(base + "/readyz")
        assert status == 503 and json.loads(body)["checks"]["broker"]["detail"] == "not checked yet"
        readiness.report("broker", True, "ok")
        status, body = get(base + "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        status, body = get(base + "/metrics")
        assert status == 200
        assert "newswire_example_total 3.0" in body
        assert 'newswire_ready{check="broker",service="ingest"} 1.0' in body
        assert get(base + "/nothing")[0] == 404
    finally:
        endpoint.close()


def test_a_probe_that_raises_is_a_failed_check(tmp_path: Path) -> None:
    readiness = Readiness("pipeline", ["index"])
    stop = threading.Event()

    def broken() -> tuple[bool, str]:
        raise OSError("disk gone")

    readiness.probe("index", broken, interval_s=60, stop=stop).join(timeout=0.5)
    stop.set()
    assert readiness.states()["index"].ok is False
    assert "disk gone" in readiness.states()["index"].detail


def test_file_probes_fail_where_nothing_can_be_written(tmp_path: Path) -> None:
    assert sqlite_writable_probe(tmp_path / "index.sqlite3", "dedup index")() == (
        True,
        f"dedup index at {tmp_path / 'index.sqlite3'} writable",
    )
    assert directory_writable_probe(tmp_path / "archive", "page archive")()[0] is True
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    with pytest.raises(OSError):  # Readiness.probe turns this into a failed check
        directory_writable_probe(not_a_directory / "archive", "page archive")()
    # A writer holding the lock is busy, not broken: see the test below.


def test_a_check_fails_while_either_the_service_or_its_probe_says_so(caplog: pytest.LogCaptureFixture) -> None:
    readiness = Readiness("pipeline", ["sink:sqlite"])
    with caplog.at_level(logging.INFO, logger="newswire.health"):
        readiness.report("sink:sqlite", True, "writable", reporter="probe")
        readiness.report("sink:sqlite", False, "disk I/O error")  # what the service saw writing
        readiness.report("sink:sqlite", True, "writable", reporter="probe")  # the probe alone cannot clear it
        assert not readiness.ready
        assert readiness.states()["sink:sqlite"].detail == "disk I/O error"
        readiness.report("sink:sqlite", True, "writes again")
    assert readiness.ready
    assert [r.getMessage() for r in caplog.records] == [
        "sink:sqlite ready",
        "sink:sqlite not ready",
        "sink:sqlite ready",
    ]


def test_a_write_in_progress_is_busy_and_a_lock_held_too_long_is_not_ready(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")  # a batch's transaction, as the pipeline holds it
    try:
        patient = sqlite_writable_probe(path, "dedup index", stuck_after_s=60)
        ok, detail = patient()
        assert ok and "busy" in detail
        impatient = sqlite_writable_probe(path, "dedup index", stuck_after_s=0)
        ok, detail = impatient()
        assert not ok and "stuck" in detail
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert impatient() == (True, f"dedup index at {path} writable")
