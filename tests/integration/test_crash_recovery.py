"""SIGKILL the continuous pipeline in the middle of a replay; a restart loses and doubles nothing."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from newswire.testing.corpus import write_generated_seeds
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
ARTICLES = 3000


def test_sigkill_mid_replay_loses_none_and_duplicates_none(newswire_run: NewswireRun, tmp_path: Path) -> None:
    write_generated_seeds(tmp_path / "seeds", ARTICLES)
    newswire_run.env["NEWSWIRE_PIPELINE__MAX_BATCH_RECORDS"] = "150"  # many small batches to die between
    newswire_run.command("replay", str(tmp_path / "seeds"), "--no-progress")

    kills: list[int] = []
    # Kill three times at different points, so the kill lands inside a batch's writes at least once.
    for threshold in (ARTICLES // 5, 2 * ARTICLES // 5, 3 * ARTICLES // 5):
        pipeline = newswire_run.start("pipeline")
        newswire_run.wait_for_sqlite_rows(pipeline, threshold, timeout_s=240)
        time.sleep(0.3 * len(kills))
        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait(timeout=30)
        kills.append(len(newswire_run.sqlite_rows()))
    assert 0 < kills[-1] < ARTICLES, "the kills must land mid-replay"

    newswire_run.command("pipeline", "--until-caught-up")

    ids = [row[0] for row in newswire_run.sqlite_rows()]
    assert len(ids) == ARTICLES and len(set(ids)) == ARTICLES
    lines = [json.loads(line)["article_id"] for line in newswire_run.jsonl_lines()]
    doubled = [i for i, n in Counter(lines).items() if n > 1]
    assert not doubled, f"{len(doubled)} articles written twice to the JSON Lines file"
    assert len(lines) == ARTICLES
    enriched_ids = {key for key, _ in newswire_run.topic_values(newswire_run.topics.enriched)}
    assert len(enriched_ids) == ARTICLES, "every article reached the output topic at least once"
    print(f"killed at {kills} of {ARTICLES} articles written; after restart: {len(ids)} rows, 0 doubled")
