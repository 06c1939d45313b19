"""A source's status as the console shows it, from what the readers gathered.

The rule, in order: ``drifting`` when the quality monitor finds a field drifting;
``failing`` after three polls in a row failed; ``retrying`` after one or two; ``silent``
when no article came for ``silent_factor`` poll intervals (or, never having had one, after
that many polls, or a configured source never polled at all); else ``healthy``. The same rule is in the alert rules
(``newswire/observability/alerts.yml``). Pure: no reading, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

FAILING_AFTER = 3  # consecutive failed polls


class Status(StrEnum):
    HEALTHY = "healthy"
    RETRYING = "retrying"
    FAILING = "failing"
    SILENT = "silent"
    DRIFTING = "drifting"


@dataclass(frozen=True)
class SourceSignals:
    drifting: bool = False
    consecutive_failures: int = 0
    polls: int = 0
    poll_interval_s: float | None = None
    last_article_at: float | None = None
    configured: bool = False  # in the sources file, so it should be polled


def source_status(signals: SourceSignals, *, now: float, silent_factor: float) -> tuple[Status, str]:
    """The status and a short reason a person can read."""
    if signals.drifting:
        return Status.DRIFTING, "a field dropped below its baseline"
    if signals.consecutive_failures >= FAILING_AFTER:
        return Status.FAILING, f"{signals.consecutive_failures} polls in a row failed"
    if signals.consecutive_failures:
        return Status.RETRYING, f"{signals.consecutive_failures} poll(s) failed; retrying"
    if signals.configured and signals.polls == 0:
        return Status.SILENT, "never polled: is `newswire ingest` running?"
    if signals.poll_interval_s:
        quiet_for = silent_factor * signals.poll_interval_s
        if signals.last_article_at is not None and now - signals.last_article_at > quiet_for:
            return Status.SILENT, f"no article for {now - signals.last_article_at:.0f} s"
        if signals.last_article_at is None and signals.polls >= silent_factor:
            return Status.SILENT, f"no article in {signals.polls} polls"
    return Status.HEALTHY, ""
