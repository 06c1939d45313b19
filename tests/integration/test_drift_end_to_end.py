"""A publisher changes its page template mid-run: the source turns `drifting`, naming the
field, within the configured window; and `healthy` again once the template is restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from newswire.testing.http_server import LoopbackServer
from newswire.testing.publisher import LoopbackPublisher, Template
from tests.integration.console_stack import console_stack
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
WINDOW = {"window": "10", "baseline": "20", "min_window": "8", "min_baseline": "10"}


def test_a_source_whose_dates_vanish_drifts_and_recovers(newswire_run: NewswireRun, tmp_path: Path) -> None:
    with LoopbackServer() as server:
        publisher = LoopbackPublisher(server, "changing-news")
        publisher.publish(20)
        sources = tmp_path / "sources.yaml"
        sources.write_text(publisher.sources_yaml())
        with console_stack(newswire_run, tmp_path, sources=sources, quality=WINDOW) as stack:

            def row() -> dict:
                return stack.source("changing-news") or {}

            healthy = stack.wait(
                "a healthy, judged source",
                lambda: (r := row()).get("quality") == "healthy" and r["articles_per_hour"] >= 20 and r,
                timeout_s=120,
            )
            assert healthy["status"] == "healthy"
            assert {f["field"]: f["share"] for f in healthy["completeness"]}["published_at"] == 100

            # The next poll finds as many stories without dates as the window holds, and no more
            # come until the template is restored: drifting must show within those pages.
            publisher.publish(int(WINDOW["window"]), Template.NO_DATE)
            drifting = stack.wait("drift", lambda: (r := row()).get("status") == "drifting" and r, timeout_s=90)
            assert [d["field"] for d in drifting["drifting"]] == ["published_at"]
            assert drifting["drifting"][0]["since"]
            assert "published_at" in drifting["reason"]
            metrics = stack_metrics(stack)
            assert 'newswire_source_drifting{field="published_at",source="changing-news"} 1.0' in metrics

            publisher.publish(12)  # the template restored
            restored = stack.wait("recovery", lambda: (r := row()).get("status") == "healthy" and r, timeout_s=90)
            assert restored["drifting"] == []
            assert 'newswire_source_drifting{field="published_at",source="changing-news"} 0.0' in stack_metrics(stack)


def stack_metrics(stack) -> str:  # type: ignore[no-untyped-def]
    import urllib.request

    with urllib.request.urlopen(stack.console_url + "/metrics", timeout=10) as response:
        return response.read().decode()
