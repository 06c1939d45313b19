"""The drift rule of pipeline.quality.drift, on hand-made page sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.quality.drift import DriftRule, Page, SourceQuality, SourceStatus, SourceTracker, z_drop

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FULL = frozenset({"title", "published_at", "author", "language"})
RULE = DriftRule(window=10, baseline=30, min_window=8, min_baseline=10)


def _pages(
    count: int, start: int, *, fields: frozenset[str] = FULL, body: int = 2000, outcome: str | None = None
) -> list[Page]:
    return [
        Page(T0 + timedelta(minutes=start + i), outcome, fields if outcome is None else frozenset(), body)
        for i in range(count)
    ]


def _feed(tracker: SourceTracker, pages: list[Page]) -> SourceQuality:
    quality = None
    for page in pages:
        quality = tracker.observe(page)
    assert quality is not None
    return quality


def test_z_statistic_is_the_pooled_two_proportion_test() -> None:
    # 40/40 in the baseline against 0/20 in the window: pooled 2/3.
    assert z_drop(40, 40, 0, 20) == pytest.approx(1 / ((2 / 3) * (1 / 3) * (1 / 40 + 1 / 20)) ** 0.5)
    assert z_drop(10, 10, 10, 10) == 0.0
    assert z_drop(5, 10, 8, 10) < 0  # a rise is not a drop


def test_a_source_learns_first_then_is_healthy() -> None:
    tracker = SourceTracker("loopback", RULE)
    assert _feed(tracker, _pages(9, 0)).status is SourceStatus.LEARNING
    assert _feed(tracker, _pages(20, 9)).status is SourceStatus.HEALTHY


def test_dates_disappearing_drift_the_published_at_field_and_say_since_when() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0))
    changed = _pages(10, 40, fields=FULL - {"published_at"})
    quality = _feed(tracker, changed)
    assert quality.status is SourceStatus.DRIFTING
    assert [f.name for f in quality.drifting] == ["published_at"]
    since = quality.drifting[0].drifting_since
    assert since is not None and changed[0].at < since <= changed[-1].at


def test_the_source_is_healthy_again_once_the_field_is_restored() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0))
    _feed(tracker, _pages(10, 40, fields=FULL - {"published_at"}))
    baseline_before = list(tracker.baseline)
    assert _feed(tracker, _pages(10, 50)).status is SourceStatus.HEALTHY
    # The drifted pages never entered the baseline.
    assert all("published_at" in p.fields for p in tracker.baseline)
    assert len(tracker.baseline) >= len(baseline_before)


def test_bodies_turning_into_dead_letters_drift_that_outcome() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0))
    quality = _feed(tracker, _pages(10, 40, outcome="not_an_article"))
    assert "dead_letter:not_an_article" in [f.name for f in quality.drifting]


def test_short_bodies_drift_body_length() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0, body=3000))
    quality = _feed(tracker, _pages(10, 40, body=400))
    assert [f.name for f in quality.drifting] == ["body_length"]


def test_a_small_dip_is_not_drift() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0))
    mixed = _pages(9, 40) + _pages(1, 49, fields=FULL - {"author"})
    assert _feed(tracker, mixed).status is SourceStatus.HEALTHY


def test_the_state_survives_a_round_trip() -> None:
    tracker = SourceTracker("loopback", RULE)
    _feed(tracker, _pages(40, 0))
    _feed(tracker, _pages(10, 40, fields=FULL - {"title"}))
    again = SourceTracker.from_json("loopback", RULE, tracker.to_json())
    assert again.judge() == tracker.judge()


def test_the_rule_refuses_a_minimum_larger_than_its_window() -> None:
    with pytest.raises(ValueError, match="min_window"):
        DriftRule(window=5, min_window=6)


def test_what_counts_as_present_on_an_article() -> None:
    from pipeline.quality.monitor import page_of_article
    from schemas import EnrichedArticle, SourceKind, SourceRef

    article = EnrichedArticle(
        article_id="url-abc",
        canonical_url="https://news.example/a",
        title="https://news.example/a",  # the cleaner's fallback: the page had no title
        body="Body text.",
        authors=["A. Writer"],
        fetched_at=T0,
        source=SourceRef(kind=SourceKind.FEED, name="example"),
        enriched_at=T0,
        content_fingerprint="0" * 64,
    )
    page = page_of_article(article)
    assert page.fields == frozenset({"author"})
    assert page.body_chars == len("Body text.") and page.at == T0 and page.is_article


def test_the_store_resumes_every_source_after_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.quality.monitor import QualityStore, read_statuses

    store = QualityStore(tmp_path / "quality.sqlite3", RULE)
    for page in _pages(40, 0) + _pages(10, 40, fields=FULL - {"language"}):
        store.observe("loopback", page)
    before = store.statuses()
    store.close()
    assert [f.name for f in before[0].drifting] == ["language"]
    again = QualityStore(tmp_path / "quality.sqlite3", RULE)
    assert again.statuses() == before
    assert read_statuses(tmp_path / "quality.sqlite3", RULE) == before  # what the console reads
    again.close()
