"""The chaos benchmark's supervisor: runs real `newswire` commands, kills them, restarts them.

It does what systemd or Kubernetes would for a crashed service: a process that exits on its
own is restarted after a short, growing delay, and its exit is recorded (code, time, the end
of its log), because a service that nothing stops must never exit by itself. A process the
benchmark kills on purpose is restarted at once and not counted as an exit.

Every process runs in its own session, so killing one kills its children with it, and
nothing this module starts outlives ``stop_all``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_PROBLEM_LINE = re.compile(r'"level": "(warning|error|critical)"|^(warning|error|critical)\s', re.IGNORECASE)


@dataclass(frozen=True)
class Exit:
    service: str
    at_s: float
    code: int | None
    log_tail: str


@dataclass
class Service:
    """One supervised command, e.g. ``newswire pipeline``."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_paths: list[Path] = field(default_factory=list)
    restart_at: float | None = None
    started_at: float = 0.0
    # Exits in a row, each soon after its start: a crash loop backs off.
    crash_loop: int = 0

    def start(self) -> None:
        self.starts += 1
        log_path = self.log_dir / f"{self.name}.{self.starts}.log"
        self.log_paths.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "newswire.cli", *self.args],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children (fetch workers) are killed with it
            )
        self.restart_at = None
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL the process and its children (its session), and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def log_tail(self, lines: int = 6) -> str:
        if not self.log_paths or not self.log_paths[-1].exists():
            return ""
        text = self.log_paths[-1].read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(line[:300] for line in text[-lines:])

    def problem_lines(self) -> Counter[str]:
        """WARNING and ERROR lines in every log this service wrote, by logger and message start."""
        counts: Counter[str] = Counter()
        for path in self.log_paths:
            if path.exists():
                with path.open(encoding="utf-8", errors="replace") as log:
                    for line in log:
                        if _PROBLEM_LINE.search(line):
                            counts[_gist(line)] += 1
        return counts


def _gist(line: str) -> str:
    """'logger: first words of the message' of a JSON log line (the line's start if it is not JSON)."""
    try:
        entry = json.loads(line)
        return f"{entry.get('logger', '?')}: {str(entry.get('message', ''))[:50]}"
    except (json.JSONDecodeError, AttributeError):
        return line.strip()[:60]


class Supervisor:
    def __init__(self, started_at: float) -> None:
        self._started_at = started_at
        self.services: dict[str, Service] = {}
        self.exits: list[Exit] = []
        self.slow_stops: list[str] = []

    def add(self, service: Service) -> Service:
        self.services[service.name] = service
        service.start()
        return service

    def check(self) -> None:
        """Record and restart any service that exited on its own (call it every second or so)."""
        now = time.monotonic()
        for service in self.services.values():
            process = service.process
            if service.restart_at is not None:
                if now >= service.restart_at:
                    service.start()
                continue
            if process is None or process.poll() is None:
                continue
            self.exits.append(Exit(service.name, now - self._started_at, process.returncode, service.log_tail()))
            service.crash_loop = service.crash_loop + 1 if now - service.started_at < 30 else 1
            service.restart_at = now + min(10.0, 0.5 * 2**service.crash_loop)

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and restart it straight away, as a supervisor would."""
        service = self.services[name]
        service.kill()
        service.start()

    def kill_child(self, name: str) -> int | None:
        """SIGKILL one worker process started by ``name``; its pid, or None if it has none."""
        service = self.services[name]
        workers = worker_children(service.pid) if service.pid is not None else []
        if not workers:
            return None
        os.kill(workers[0], signal.SIGKILL)
        return workers[0]

    def count_children(self, name: str) -> int:
        service = self.services[name]
        return len(worker_children(service.pid)) if service.pid is not None else 0

    def stop_all(self, timeout_s: float = 30) -> None:
        """SIGTERM every service (finish the work in flight), then SIGKILL what still runs."""
        for service in self.services.values():
            service.restart_at = None
            if service.process is not None and service.process.poll() is None:
                os.killpg(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for service in self.services.values():
            process = service.process
            if process is None:
                continue
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.slow_stops.append(service.name)
            with_children = process.poll() is None or bool(children(process.pid))
            if with_children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent pid is the 2nd field after it.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return sorted(found)


def worker_children(pid: int) -> list[int]:
    """The child processes of ``pid`` that do its work: not multiprocessing's own helpers
    (the resource tracker, a fork server), whichever start method made them."""
    helpers = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "semaphore_tracker")
    return [child for child in children(pid) if not any(h in command_line(child) for h in helpers)]


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
