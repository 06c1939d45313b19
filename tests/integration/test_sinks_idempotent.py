"""Every sink holds each article exactly once, whatever replays and crashes happened.

Runs the real `newswire` commands against the session's real Kafka broker and a real
PostgreSQL server (newswire/testing/postgres.py), with all four sinks enabled at once.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow.dataset as ds  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pytest
from psycopg import sql

from newswire.testing.corpus import write_generated_seeds
from newswire.testing.postgres import PostgresServer
from pipeline.sinks.postgres import PostgresSink
from schemas import EnrichedArticle, SourceKind, SourceRef
from tests.integration.harness import REPO, NewswireRun

pytestmark = pytest.mark.integration
SINKS = ("sqlite", "jsonl", "postgres", "parquet")


class FourSinks:
    """Reads back what each sink of one deployment holds, as article ids (duplicates kept)."""

    def __init__(self, run: NewswireRun, database: PostgresServer, lake: Path) -> None:
        self.run, self.database, self.lake = run, database, lake

    def ids(self) -> dict[str, list[str]]:
        with self.database.connect() as db:
            postgres = [row[0] for row in db.execute("SELECT article_id FROM articles")]
        lake = ds.dataset(self.lake, format="parquet", partitioning="hive").to_table(columns=["article_id"])
        return {
            "sqlite": [row[0] for row in self.run.sqlite_rows()],
            "jsonl": [json.loads(line)["article_id"] for line in self.run.jsonl_lines()],
            "postgres": postgres,
            "parquet": [str(i) for i in lake.column("article_id").to_pylist()],
        }

    def assert_each_holds_exactly(self, expected: set[str]) -> None:
        for sink, ids in self.ids().items():
            doubled = sorted(i for i, n in Counter(ids).items() if n > 1)
            assert not doubled, f"{sink}: {len(doubled)} articles written more than once, e.g. {doubled[:3]}"
            missing, extra = expected - set(ids), set(ids) - expected
            assert not missing and not extra, f"{sink}: {len(missing)} missing, {len(extra)} unexpected"

    def originals(self) -> Counter[bytes | None]:
        """How often each article id left the pipeline as an original (the enriched topic)."""
        return Counter(key for key, _ in self.run.topic_values(self.run.topics.enriched))


@pytest.fixture
def four_sinks(newswire_run: NewswireRun, postgres_server: PostgresServer, tmp_path: Path) -> FourSinks:
    database = postgres_server.database()
    lake = tmp_path / "lake"
    newswire_run.env.update(
        {
            "NEWSWIRE_SINKS__ENABLED": json.dumps(SINKS),
            "NEWSWIRE_SINKS__POSTGRES_DSN": database.dsn,
            "NEWSWIRE_SINKS__POSTGRES_PASSWORD": database.password.get_secret_value(),
            "NEWSWIRE_SINKS__PARQUET_DIR": str(lake),
            # Small, so that files roll (are sealed and new ones begun) within the test.
            "NEWSWIRE_SINKS__PARQUET_ROLL_BYTES": str(256 * 1024),
        }
    )
    return FourSinks(newswire_run, database, lake)


def test_replaying_the_seeds_twice_and_reprocessing_everything_leaves_one_copy_per_sink(
    newswire_run: NewswireRun, four_sinks: FourSinks, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    write_generated_seeds(seeds, 60)
    for seed in (REPO / "seeds").glob("*.txt"):
        shutil.copy(seed, seeds / seed.name)
    newswire_run.command("replay", str(seeds), "--no-progress")
    newswire_run.command("replay", str(seeds), "--no-progress")
    newswire_run.command("pipeline", "--until-caught-up")
    # A second pipeline that lost its offsets and its dedup memory: it reads both replays
    # again from the start and offers every article to every sink once more.
    newswire_run.env["NEWSWIRE_PIPELINE__CONSUMER_GROUP"] += "-again"
    newswire_run.env["NEWSWIRE_PIPELINE__DEDUP_INDEX"] = str(tmp_path / "state-again" / "dedup.sqlite3")
    newswire_run.command("pipeline", "--until-caught-up")

    originals = four_sinks.originals()
    assert len(originals) > 30, "most generated seeds are distinct articles"
    assert all(n == 2 for n in originals.values()), "each article was written to the sinks twice"
    four_sinks.assert_each_holds_exactly({key.decode() for key in originals if key})


def test_sigkill_mid_write_then_restart_leaves_every_sink_complete_without_duplicates(
    newswire_run: NewswireRun, four_sinks: FourSinks, tmp_path: Path
) -> None:
    articles = 2000
    write_generated_seeds(tmp_path / "seeds", articles)
    newswire_run.env["NEWSWIRE_PIPELINE__MAX_BATCH_RECORDS"] = "100"  # many small batches to die in
    newswire_run.command("replay", str(tmp_path / "seeds"), "--no-progress")

    kills: list[int] = []
    for threshold in (articles // 6, articles // 3):
        pipeline = newswire_run.start("pipeline")
        newswire_run.wait_for_sqlite_rows(pipeline, threshold, timeout_s=120)
        # Staggered, so that the kills land at different points of a batch's sink writes.
        time.sleep(0.2 + 0.35 * len(kills))
        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait(timeout=30)
        kills.append(len(newswire_run.sqlite_rows()))

    newswire_run.command("pipeline", "--until-caught-up")

    originals = {key.decode() for key in four_sinks.originals() if key}
    assert kills[-1] < len(originals), f"the kills (at {kills} rows) must land before the end"
    assert len(originals) > articles // 2
    four_sinks.assert_each_holds_exactly(originals)
    print(f"killed at {kills} SQLite rows of {len(originals)} original articles; after restart: one copy in {SINKS}")


def test_postgres_sink_upserts_creates_its_table_and_reconnects_after_losing_its_connection(
    postgres_server: PostgresServer,
) -> None:
    database = postgres_server.database()

    def article(number: int, title: str, body: str = "Body.") -> EnrichedArticle:
        return EnrichedArticle(
            article_id=f"seed-{number:06d}",
            title=title,
            body=body,
            published_at=datetime(2026, 3, 14, 9, 26, tzinfo=UTC),
            fetched_at=datetime(2026, 3, 14, 10, tzinfo=UTC),
            source=SourceRef(kind=SourceKind.SEED, name="x.txt"),
            enriched_at=datetime(2026, 3, 14, 10, tzinfo=UTC),
            content_fingerprint="0" * 64,
            story_id=f"story-{number}",
        )

    sink = PostgresSink(database.dsn, password=database.password, table=f"news_{uuid.uuid4().hex[:6]}")
    sink.open()
    sink.write([article(1, "First"), article(2, "Second"), article(1, "First, corrected")])
    with database.connect(autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'newswire-pipeline'"
        )
    time.sleep(0.2)
    with pytest.raises(psycopg.OperationalError):  # the dropped connection fails the batch in flight
        sink.write([article(3, "Third")])
    # The re-run batch reconnects; a NUL, which PostgreSQL text cannot hold, does not fail it.
    sink.write([article(2, "Second, again"), article(3, "Third", body="Nul\x00here.")])
    sink.close()

    with database.connect() as db:
        rows = db.execute(
            sql.SQL("SELECT article_id, title, published_at, record->>'title', body FROM {} ORDER BY 1").format(
                sql.Identifier(sink.table)
            )
        ).fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("seed-000001", "First, corrected", "First, corrected"),
        ("seed-000002", "Second, again", "Second, again"),
        ("seed-000003", "Third", "Third"),
    ]
    assert rows[0][2] == datetime(2026, 3, 14, 9, 26, tzinfo=UTC)
    assert rows[2][4] == "Nul\ufffdhere."

    # Demoted articles are withdrawn for good: a write landing afterwards does not restore them.
    sink.open()
    sink.withdraw(["seed-000002", "seed-000004"])
    sink.write([article(2, "Second, once more"), article(4, "Fourth"), article(5, "Fifth")])
    sink.close()
    with database.connect() as db:
        ids = db.execute(sql.SQL("SELECT article_id FROM {} ORDER BY 1").format(sql.Identifier(sink.table))).fetchall()
    assert [row[0] for row in ids] == ["seed-000001", "seed-000003", "seed-000005"]
