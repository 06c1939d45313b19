"""Telling a dependency that is down from a record that is bad.

A write fails for one of two reasons. Either the element is at fault (a row the database
refuses, a record the broker refuses as too large): that element becomes a dead letter
and the rest of the batch goes on. Or the dependency is (connection refused, PostgreSQL
stopped, the broker away, the disk full, a lock held too long): then no element is at
fault, the batch fails so its offsets stay uncommitted, and the micro-batch service waits
the outage out, probing, and runs the batch again once the dependency is back.

Writers say "the dependency" by raising ``DependencyUnavailable`` (``SinkUnavailable``,
``BrokerUnavailable``), naming the health check it concerns (``"sink:postgres"``,
``"broker"``, ``"disk"``, ``"index"``) and how soon to look again, as Quix Streams' sinks
raise a back-pressure error with a retry delay. This module must never turn such an
error into a dead letter, and never guess "the element" when unsure: an error it cannot
place is the element's only after the batch has been retried and bisected down to it.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import uuid
from pathlib import Path

DEFAULT_RETRY_AFTER_S = 1.0
# Errors of the disk, the file system or the machine, never of what is being written.
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE}
)
# What SQLite says when the file, the disk or another process holding a lock is at fault.
_SQLITE_ENVIRONMENT = ("locked", "busy", "disk is full", "disk i/o", "unable to open", "readonly", "out of memory")
# Runners may hand back only the text of a worker's exception: the marker survives that.
_MARKER = re.compile(r"\[unavailable:(?P<check>[\w:.-]+)\]")


class DependencyUnavailable(Exception):
    """A dependency, not the data, made this fail: never a dead letter; wait and retry."""

    def __init__(self, check: str, detail: str, *, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(f"{check} is unavailable: {detail} [unavailable:{check}]")
        self.check = check
        self.detail = detail
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        return (_rebuild, (type(self), self.check, self.detail, self.retry_after_s))


def _rebuild(kind: type[DependencyUnavailable], check: str, detail: str, retry_after_s: float) -> DependencyUnavailable:
    return kind(check, detail, retry_after_s=retry_after_s)


class SinkUnavailable(DependencyUnavailable):
    """A sink's database or file system cannot take writes now."""


class BrokerUnavailable(DependencyUnavailable):
    """The Kafka cluster cannot take or serve records now."""


def unavailable_in(error: BaseException) -> str | None:
    """The health check a failure names as down, if any: found on the exception chain, or
    in its text when a runner passed on only the text."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DependencyUnavailable):
            return current.check
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    match = _MARKER.search(str(error))
    return match.group("check") if match else None


def environment_error(error: BaseException) -> bool:
    """True for errors of the disk, the file system or a lock, whatever was being written."""
    if isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRNOS:
        return True
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(words in message for words in _SQLITE_ENVIRONMENT)
    return False


def probe_directory(directory: Path, *, check: str = "disk", probe_bytes: int = 4096) -> None:
    """Write, sync and remove a small file in ``directory``; raises ``SinkUnavailable`` when
    the disk is full, read-only or missing. A free-space figure alone would miss quotas."""
    probe = directory / f".newswire-probe-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as out:
            out.write(b"\0" * probe_bytes)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise SinkUnavailable(check, f"cannot write to {directory}: {error.strerror or error}") from error
    finally:
        probe.unlink(missing_ok=True)
