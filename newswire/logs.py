"""Structured logging for the service: one JSON object per line (or plain text for people).

Libraries that narrate outages are kept to a few lines: kafka-python logs every reconnect
and metadata refresh at WARNING/ERROR (a 20 s broker outage once wrote 274 lines), and
Beam logs the traceback of every failed bundle, which the micro-batch service reports
itself. Each library's lines of each level get through once a minute (they are symptoms
of one cause); the next one says how many were held back. What changed (a dependency down, back after N s) is said once
by the service that noticed it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is data.
_STANDARD_ATTRIBUTES = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES)
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        return f"{line} {extras}" if extras else line


class _DropBeamGcpNotice(logging.Filter):
    """Beam warns through the root logger, at import, that the optional Google Cloud
    libraries are missing; newswire never uses them, so the line is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.pathname.find("apache_beam") >= 0 and "apitools not found" in record.getMessage())


# Loggers whose warnings repeat for as long as an outage lasts.
NOISY_DURING_OUTAGES = ("kafka", "apache_beam.runners")
REPEAT_INTERVAL_S = 60.0


class OncePerInterval(logging.Filter):
    """Lets WARNING-or-worse lines of each of ``loggers`` (and their children) through once
    per ``interval_s`` and level: a reconnecting client says the same thing many ways."""

    def __init__(self, loggers: tuple[str, ...] = NOISY_DURING_OUTAGES, interval_s: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self._loggers = loggers
        self._interval_s = interval_s
        self._last: dict[tuple[str, int], float] = {}
        self._held_back: Counter[tuple[str, int]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        family = next(
            (name for name in self._loggers if record.name == name or record.name.startswith(name + ".")), None
        )
        if record.levelno < logging.WARNING or family is None:
            return True
        kind = (family, record.levelno)
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval_s:
            self._held_back[kind] += 1
            return False
        self._last[kind] = now
        held_back = self._held_back.pop(kind, 0)
        if held_back:
            record.similar_lines_held_back = held_back
        return True


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_DropBeamGcpNotice())
    handler.addFilter(OncePerInterval())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Beam and kafka-python narrate every bundle and reconnect at INFO; keep their warnings.
    for noisy in ("apache_beam", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
