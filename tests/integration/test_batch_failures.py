"""No record fails a batch: a record a sink refuses is dead-lettered, the rest of its batch lands.

On the real broker and a real PostgreSQL server; the service runs as it does in production
(``MicroBatchService`` from the settings), in a thread of the test.
"""

from __future__ import annotations

import random
import string
import time
from pathlib import Path
from typing import Any

import pytest

from newswire.testing.postgres import PostgresServer
from schemas import CleanedArticle
from tests.integration.pipeline_service import articles, dead_letters, publish, running_service, settings_for

pytestmark = pytest.mark.integration


def _rows(database: PostgresServer) -> list[str]:
    with database.connect() as db:
        try:
            return sorted(row[0] for row in db.execute("SELECT article_id FROM articles"))
        except Exception:  # table not created yet
            return []


def _wait_for(condition: Any, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_an_article_postgres_refuses_is_dead_lettered_and_the_rest_of_its_batch_lands(
    kafka_broker: Any, topics: Any, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = postgres_server.database()
    *good, other = articles(6)
    # A valid article id whose primary-key entry is over PostgreSQL's B-tree limit (2704
    # bytes; random letters do not compress under it): PostgreSQL refuses the row, while
    # Kafka, SQLite and every other stage take it.
    letters = "".join(random.Random(3).choices(string.ascii_lowercase, k=4000))
    refused = other.model_copy(update={"article_id": f"{letters}-x"})
    batch: list[CleanedArticle] = [*good[:2], refused, *good[2:]]
    publish(kafka_broker.bootstrap, topics.raw, batch)
    settings = settings_for(kafka_broker.settings, topics, tmp_path, sinks=("sqlite", "postgres"), database=database)

    with running_service(settings) as running:
        _wait_for(lambda: len(_rows(database)) == len(good), timeout_s=60, what="the good articles in PostgreSQL")
        _wait_for(
            lambda: dead_letters(kafka_broker.bootstrap, topics.dead_letter), timeout_s=30, what="the dead letter"
        )
        assert running.thread.is_alive() and not running.errors, f"the service exited: {running.errors}"

    assert _rows(database) == sorted(a.article_id for a in good)
    (dead,) = dead_letters(kafka_broker.bootstrap, topics.dead_letter)
    assert (dead.stage, dead.error_type) == ("sink:postgres", "write_refused")
    assert "index row" in dead.error and "ProgramLimitExceeded" in dead.error
    assert (dead.topic, dead.partition, dead.offset) == (topics.raw, 0, 2), "the raw record's coordinates"
    assert dead.key == refused.article_id
    assert dead.original is not None and CleanedArticle.model_validate_json(dead.original) == refused
    # Only PostgreSQL refused it: the other sink holds the whole batch.
    assert sum(report.records for report in running.reports) == len(batch)
