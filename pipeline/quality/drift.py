"""Layout drift of a source, judged from the pages it yields: pure logic, no I/O.

For every source we keep its last ``window`` pages (articles and dead letters) and, behind
them, a longer ``baseline`` of the pages before. A field drifts when its share in the window
is significantly below its share in the baseline, by this rule:

* shares (title, publication time, author, language present; a page dead-lettered with a
  given outcome, where a rise is the bad direction) are compared with a one-sided
  two-proportion z-test, pooled variance: ``z = (p_base - p_win) / sqrt(p (1 - p) (1/n_base + 1/n_win))``
  with ``p`` the pooled share; the field drifts when ``z >= z_threshold`` *and* the drop is at
  least ``min_drop`` (so a large sample cannot flag a trivial change);
* the median body length drifts when the window's median falls below
  ``body_ratio`` times the baseline's;
* nothing is judged until the window holds ``min_window`` pages (articles, for article
  fields) and the baseline ``min_baseline``.

The pages in the window when a drift is found, and those seen while it lasts, never join the
baseline when they leave the window: the baseline stays what "healthy" looked like, so the
source returns to ``healthy`` only when its pages do. This module must never read topics,
clocks or files: callers hand it observations.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

ARTICLE_FIELDS = ("title", "published_at", "author", "language")
BODY_LENGTH = "body_length"
DEAD_LETTER_PREFIX = "dead_letter:"


class SourceStatus(StrEnum):
    HEALTHY = "healthy"
    DRIFTING = "drifting"
    LEARNING = "learning"  # not enough history yet to judge


@dataclass(frozen=True)
class DriftRule:
    window: int = 30
    baseline: int = 200
    min_window: int = 10
    min_baseline: int = 20
    z_threshold: float = 2.33  # one-sided, alpha = 0.01
    min_drop: float = 0.2
    body_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.min_window <= self.window:
            raise ValueError(f"min_window must be between 1 and window ({self.window}), not {self.min_window}")
        if not 1 <= self.min_baseline <= self.baseline:
            raise ValueError(f"min_baseline must be between 1 and baseline ({self.baseline}), not {self.min_baseline}")
        if self.z_threshold <= 0 or not 0 < self.min_drop <= 1 or not 0 < self.body_ratio < 1:
            raise ValueError("z_threshold must be > 0, min_drop in (0, 1], body_ratio in (0, 1)")


@dataclass(frozen=True)
class Page:
    """What one page of a source came to: an article with its fields, or a dead letter."""

    at: datetime
    outcome: str | None = None  # the dead letter's error_type; None for an article
    fields: frozenset[str] = frozenset()  # article fields present
    body_chars: int = 0

    @property
    def is_article(self) -> bool:
        return self.outcome is None

    def to_json(self) -> list[Any]:
        return [self.at.isoformat(), self.outcome, sorted(self.fields), self.body_chars]

    @classmethod
    def from_json(cls, value: list[Any]) -> Page:
        return cls(datetime.fromisoformat(value[0]), value[1], frozenset(value[2]), int(value[3]))


@dataclass(frozen=True)
class FieldQuality:
    name: str
    window_share: float
    baseline_share: float
    z: float | None
    drifting_since: datetime | None


@dataclass(frozen=True)
class SourceQuality:
    source: str
    status: SourceStatus
    pages: int  # in the window
    fields: tuple[FieldQuality, ...]
    window_median_body: float
    baseline_median_body: float
    last_page_at: datetime | None

    @property
    def drifting(self) -> tuple[FieldQuality, ...]:
        return tuple(f for f in self.fields if f.drifting_since is not None)


def z_drop(base_hits: int, base_n: int, window_hits: int, window_n: int) -> float:
    """One-sided two-proportion z statistic for a drop from the baseline share to the window's
    (positive when the window is lower); 0 when both samples are all-or-nothing alike."""
    if base_n == 0 or window_n == 0:
        return 0.0
    pooled = (base_hits + window_hits) / (base_n + window_n)
    variance = pooled * (1 - pooled) * (1 / base_n + 1 / window_n)
    if variance <= 0:
        return 0.0
    return (base_hits / base_n - window_hits / window_n) / math.sqrt(variance)


@dataclass(frozen=True)
class _Assessment:
    shares: tuple[tuple[str, float, float, float | None], ...]  # name, window share, baseline share, z
    detected: frozenset[str]
    window_median: float
    baseline_median: float
    enough: bool


@dataclass
class SourceTracker:
    """One source's window, baseline and drifting fields."""

    source: str
    rule: DriftRule
    window: deque[Page] = field(default_factory=deque)
    baseline: deque[Page] = field(default_factory=deque)
    drifting: dict[str, datetime] = field(default_factory=dict)
    held: int = 0  # the oldest pages of the window that must not join the baseline when they leave

    def observe(self, page: Page) -> SourceQuality:
        """Add one page; a field starts drifting at the first page that shows the drop, and stops
        at the first that no longer does."""
        self.window.append(page)
        if self.drifting:
            self.held += 1
        while len(self.window) > self.rule.window:
            leaving = self.window.popleft()
            if self.held:
                self.held -= 1  # seen while (or just before) drifting: not what healthy looks like
                continue
            self.baseline.append(leaving)
            while len(self.baseline) > self.rule.baseline:
                self.baseline.popleft()
        detected = self._assess().detected
        if detected and not self.drifting:
            self.held = len(self.window)  # the pages that showed the drop never join the baseline
        for name in list(self.drifting):
            if name not in detected:
                del self.drifting[name]
        for name in sorted(detected):
            self.drifting.setdefault(name, page.at)
        return self.judge()

    def judge(self) -> SourceQuality:
        assessment = self._assess()
        fields = tuple(
            FieldQuality(name, share_w, share_b, z, self.drifting.get(name))
            for name, share_w, share_b, z in assessment.shares
        )
        if not assessment.enough:
            status = SourceStatus.LEARNING
        else:
            status = SourceStatus.DRIFTING if self.drifting else SourceStatus.HEALTHY
        return SourceQuality(
            source=self.source,
            status=status,
            pages=len(self.window),
            fields=fields,
            window_median_body=assessment.window_median,
            baseline_median_body=assessment.baseline_median,
            last_page_at=self.window[-1].at if self.window else None,
        )

    def _assess(self) -> _Assessment:
        rule = self.rule
        window, baseline = list(self.window), list(self.baseline)
        window_articles = [p for p in window if p.is_article]
        base_articles = [p for p in baseline if p.is_article]
        shares: list[tuple[str, float, float, float | None]] = []
        detected: set[str] = set()
        enough = len(window) >= rule.min_window and len(baseline) >= rule.min_baseline
        articles_enough = len(window_articles) >= rule.min_window and len(base_articles) >= rule.min_baseline

        def judge_share(name: str, hits_w: int, n_w: int, hits_b: int, n_b: int, judged: bool, rise: bool) -> None:
            share_w = hits_w / n_w if n_w else 0.0
            share_b = hits_b / n_b if n_b else 0.0
            # A rise in a bad share is a drop in its complement.
            z = z_drop(n_b - hits_b, n_b, n_w - hits_w, n_w) if rise else z_drop(hits_b, n_b, hits_w, n_w)
            change = (share_w - share_b) if rise else (share_b - share_w)
            if judged and z >= rule.z_threshold and change >= rule.min_drop:
                detected.add(name)
            shares.append((name, share_w, share_b, z if judged else None))

        for name in ARTICLE_FIELDS:
            judge_share(
                name,
                sum(name in p.fields for p in window_articles),
                len(window_articles),
                sum(name in p.fields for p in base_articles),
                len(base_articles),
                articles_enough,
                rise=False,
            )
        window_median = float(statistics.median([p.body_chars for p in window_articles])) if window_articles else 0.0
        base_median = float(statistics.median([p.body_chars for p in base_articles])) if base_articles else 0.0
        if articles_enough and base_median > 0 and window_median < rule.body_ratio * base_median:
            detected.add(BODY_LENGTH)
        # Shown as the window's median relative to the baseline's.
        shares.append((BODY_LENGTH, window_median / base_median if base_median else 0.0, 1.0, None))
        # A body gone entirely turns pages into dead letters: their shares, by outcome, say so.
        for outcome in sorted({p.outcome for p in (*window, *baseline) if p.outcome is not None}):
            judge_share(
                DEAD_LETTER_PREFIX + outcome,
                sum(p.outcome == outcome for p in window),
                len(window),
                sum(p.outcome == outcome for p in baseline),
                len(baseline),
                enough,
                rise=True,
            )
        return _Assessment(tuple(shares), frozenset(detected), window_median, base_median, enough)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": [p.to_json() for p in self.window],
            "baseline": [p.to_json() for p in self.baseline],
            "drifting": {name: since.isoformat() for name, since in self.drifting.items()},
            "held": self.held,
        }

    @classmethod
    def from_json(cls, source: str, rule: DriftRule, state: dict[str, Any]) -> SourceTracker:
        tracker = cls(source, rule)
        tracker.window.extend(Page.from_json(p) for p in state.get("window", [])[-rule.window :])
        tracker.baseline.extend(Page.from_json(p) for p in state.get("baseline", [])[-rule.baseline :])
        tracker.drifting = {name: datetime.fromisoformat(at) for name, at in state.get("drifting", {}).items()}
        tracker.held = min(int(state.get("held", 0)), len(tracker.window))
        return tracker


def statuses(trackers: Iterable[SourceTracker]) -> list[SourceQuality]:
    return [t.judge() for t in sorted(trackers, key=lambda t: t.source)]
