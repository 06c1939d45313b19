"""The console's source status rule and its merging of several processes' metrics."""

from __future__ import annotations

from newswire.console.readers import mean_series, parse_metrics, rate_series
from newswire.console.status import SourceSignals, Status, source_status

NOW = 1_800_000_000.0


def status(**signals: object) -> Status:
    return source_status(SourceSignals(**signals), now=NOW, silent_factor=3)[0]  # type: ignore[arg-type]


def test_the_status_rule_in_its_order() -> None:
    assert status() is Status.HEALTHY
    assert status(drifting=True, consecutive_failures=5) is Status.DRIFTING
    assert status(consecutive_failures=3) is Status.FAILING
    assert status(consecutive_failures=1) is Status.RETRYING
    assert status(poll_interval_s=60, last_article_at=NOW - 181) is Status.SILENT
    assert status(poll_interval_s=60, last_article_at=NOW - 179) is Status.HEALTHY
    assert status(poll_interval_s=60, polls=3) is Status.SILENT  # polled thrice, never an article
    assert status(configured=True) is Status.SILENT  # in sources.yaml, never polled
    assert status(configured=True, polls=1) is Status.HEALTHY


def test_rates_and_means_between_scrapes() -> None:
    def text(records: int, seconds: float, batches: int) -> str:
        return (
            f"newswire_records_consumed_total {records}\n"
            f"newswire_batch_duration_seconds_sum {seconds}\nnewswire_batch_duration_seconds_count {batches}\n"
        )

    texts = [text(0, 0, 0), text(10, 4, 2), text(10, 4, 2)]
    scrapes = [parse_metrics(text, NOW + 5 * i) for i, text in enumerate(texts)]
    assert rate_series(scrapes, "newswire_records_consumed_total") == [(NOW + 5, 2.0), (NOW + 10, 0.0)]
    assert mean_series(scrapes, "newswire_batch_duration_seconds_sum", "newswire_batch_duration_seconds_count") == [
        (NOW + 5, 2.0),
        (NOW + 10, None),
    ]
