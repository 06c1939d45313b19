"""The one lifecycle of the JVMs newswire starts itself: the local Kafka broker and the Flink
job server.

Both are detached ``java`` processes whose pid, ports and log path are recorded in a state
file in their home, that must answer before a start returns, whose failure is told with
the tail of their log, and that stop on SIGTERM, then SIGKILL. ``newswire.broker`` and
``newswire.flink`` keep what differs (what to run, how to probe it, who owns it); the steps
they share are here, once, so that they cannot drift apart again (one used to take a
zombie for a running broker).

This module must never signal a process unless the caller has checked, with
``is_jvm_of``, that it is the JVM of that home.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

LOG_TAIL_LINES = 30
KILL_TIMEOUT_S = 10.0
POLL_S = 0.25

log = logging.getLogger(__name__)

Info = TypeVar("Info", bound="DataclassInstance")


class JvmError(Exception):
    """A JVM newswire runs could not be started or stopped; the message says what to do."""


def failure_text(subject: str, what: str, log_path: Path, *, lines: int = LOG_TAIL_LINES) -> str:
    """``subject`` ``what``, where to read more, and the last ``lines`` of its log."""
    text = log_path.read_text(encoding="utf-8", errors="replace").splitlines() if log_path.exists() else []
    tail = "\n".join(text[-lines:]) or "(the log is empty)"
    return f"{subject} {what}; read {log_path}. Last {lines} log lines:\n{tail}"


def wait_until_answering(
    *,
    answers: Callable[[float], bool],
    exited: Callable[[], str | None],
    timeout_s: float,
    timeout_setting: str,
    where: str,
    fail: Callable[[str], JvmError],
) -> None:
    """Return once ``answers(probe_timeout_s)``; raise ``fail(what happened)`` if the JVM exits
    first (``exited`` says how, else None) or ``timeout_s`` (the setting ``timeout_setting``) passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = exited()
        if status is not None:
            raise fail(f"{status} while starting")
        if answers(min(5.0, max(1.0, deadline - time.monotonic()))):
            return
        if time.monotonic() > deadline:
            raise fail(f"did not answer on {where} within {timeout_setting}={timeout_s:g}")
        time.sleep(POLL_S)


def terminate(
    pid: int,
    running: Callable[[], bool],
    *,
    stop_timeout_s: float,
    name: str,
    kill_timeout_s: float = KILL_TIMEOUT_S,
) -> bool:
    """SIGTERM (the JVM's shutdown hooks run), SIGKILL after ``stop_timeout_s``; True once
    ``running()`` says it is gone, False if it survived both."""
    for sig, wait_s in ((signal.SIGTERM, stop_timeout_s), (signal.SIGKILL, kill_timeout_s)):
        if sig == signal.SIGKILL:
            log.warning("a JVM ignored SIGTERM; killing it", extra={"jvm": name, "pid": pid})
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not running():
                return True
            time.sleep(0.1)
    return not running()


def is_jvm_of(pid: int, marker: str) -> bool:
    """Whether ``pid`` is a live process (not a zombie) whose command line holds ``marker``
    (a path only that home's JVM is given); without /proc (e.g. macOS), whether it is alive."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # gone, or another user's process by now
    proc = Path(f"/proc/{pid}")
    if not proc.parent.exists():
        return True
    try:
        if proc.joinpath("stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X"):
            return False  # exited, not yet reaped by its parent: no longer running
        return marker.encode() in proc.joinpath("cmdline").read_bytes()
    except (OSError, IndexError):
        return False


class StateFile(Generic[Info]):
    """The JSON record of a running JVM (a frozen dataclass ``kind``) in its home.

    Written atomically before the start is awaited, so an interrupted start leaves its pid
    to be found; a file that cannot be read back as ``kind`` counts as none.
    """

    def __init__(self, path: Path, kind: type[Info]) -> None:
        self.path = path
        self._kind = kind
        self._paths = {f.name for f in dataclasses.fields(kind) if f.name.endswith("_path")}

    def read(self) -> Info | None:
        try:
            raw: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            return self._kind(**{k: Path(v) if k in self._paths else v for k, v in raw.items()})
        except (OSError, ValueError, TypeError, KeyError):
            return None  # none started here, or a state file we cannot trust

    def write(self, info: Info) -> None:
        values = dataclasses.asdict(info)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps({k: str(v) if k in self._paths else v for k, v in values.items()}, indent=2))
        partial.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
