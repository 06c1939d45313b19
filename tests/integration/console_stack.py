"""A running stack for the console's tests: the real broker, the pipeline, the ingest service
over loopback publishers, and the console with its quality monitor, each a `newswire` process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.harness import NewswireRun


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    run: NewswireRun
    console_url: str
    pipeline_port: int
    ingest_port: int
    logs: Path
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.console_url + path, timeout=10) as response:
            return json.loads(response.read())

    def wait(self, what: str, check: Callable[[], Any], *, timeout_s: float) -> Any:
        """Until ``check()`` returns something true; fails naming ``what`` and the logs."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{(self.logs / f'{name}.log').read_text()[-3000:]}"
            try:
                last = check()
            except OSError as error:  # the console not answering yet
                last = error
            else:
                if last:
                    return last
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    def source(self, name: str) -> dict[str, Any] | None:
        return next((row for row in self.get_json("/api/sources") if row["name"] == name), None)


@contextmanager
def console_stack(
    run: NewswireRun, work: Path, *, sources: Path | None, quality: dict[str, str] | None = None, up: bool = False
) -> Iterator[Stack]:
    """The pipeline (``newswire up`` when ``up``, else ``newswire pipeline``), the console, and
    ``newswire ingest`` when ``sources`` is given. Every process is stopped on exit."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    console_port, pipeline_port, ingest_port = free_port(), free_port(), free_port()
    run.env.update(
        {
            "NEWSWIRE_OBSERVABILITY__CONSOLE_PORT": str(console_port),
            "NEWSWIRE_OBSERVABILITY__METRICS_PORT": str(pipeline_port),
            "NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT": str(ingest_port),
            "NEWSWIRE_OBSERVABILITY__CONSOLE_SAMPLE_INTERVAL_S": "1",
            "NEWSWIRE_OBSERVABILITY__PROBE_INTERVAL_S": "1",
            "NEWSWIRE_OBSERVABILITY__LAG_INTERVAL_S": "1",
            "NEWSWIRE_QUALITY__STATE_FILE": str(work / "state" / "quality.sqlite3"),
            "NEWSWIRE_QUALITY__CONSUMER_GROUP": f"quality-{work.name}",
            "NEWSWIRE_FETCH__ALLOW_ADDRESSES": '["127.0.0.0/8"]',
            "NEWSWIRE_FETCH__PER_HOST_INTERVAL_S": "0.02",
            "NEWSWIRE_INGEST__STATE_FILE": str(work / "state" / "connectors.sqlite3"),
            "NEWSWIRE_INGEST__ARCHIVE_DIR": str(work / "archive"),
            "NEWSWIRE_INGEST__FETCH_GROUP": f"fetchers-{work.name}",
            **{f"NEWSWIRE_QUALITY__{k.upper()}": v for k, v in (quality or {}).items()},
        }
    )
    if sources is not None:
        run.env["NEWSWIRE_INGEST__SOURCES_FILE"] = str(sources)
    stack = Stack(run, f"http://127.0.0.1:{console_port}", pipeline_port, ingest_port, logs)
    with ExitStack() as cleanup:

        def start(name: str, *args: str) -> None:
            process = run.start(*args, log=logs / f"{name}.log")
            stack.processes[name] = process

            def stop() -> None:
                process.terminate()
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

            cleanup.callback(stop)

        if up:
            start("up", "up")  # the pipeline and the console in one process
        else:
            start("pipeline", "pipeline")
            start("console", "console")
        if sources is not None:
            start("ingest", "ingest")
        stack.wait("the console", lambda: stack.get_json("/healthz")["alive"], timeout_s=90)
        yield stack
