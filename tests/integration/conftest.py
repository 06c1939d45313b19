"""Fixtures for tests that run the real `newswire` commands against the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newswire.testing.deployment import newswire_environment
from tests.integration.harness import NewswireRun


@pytest.fixture
def newswire_run(kafka_broker: Any, topics: Any, tmp_path: Path) -> Iterator[NewswireRun]:
    run_id = uuid.uuid4().hex[:8]
    output_dir = tmp_path / "output"
    env = newswire_environment(
        kafka_broker.bootstrap,
        topics,
        {
            "NEWSWIRE_SINKS__OUTPUT_DIR": str(output_dir),
            "NEWSWIRE_PIPELINE__DEDUP_INDEX": str(tmp_path / "state" / "dedup.sqlite3"),
            "NEWSWIRE_PIPELINE__STATE_DIR": str(tmp_path / "state"),
            "NEWSWIRE_PIPELINE__CONSUMER_GROUP": f"test-pipeline-{run_id}",
            "NEWSWIRE_PIPELINE__BATCH_INTERVAL_S": "0.5",
            "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
            "NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT": "0",
            "NEWSWIRE_OBSERVABILITY__LOG_FORMAT": "text",
        },
    )
    yield NewswireRun(env=env, bootstrap=kafka_broker.bootstrap, topics=topics, output_dir=output_dir)
