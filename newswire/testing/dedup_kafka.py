"""The dedup corpus through the whole service path: raw topic, `newswire pipeline`, output topics.

Each batch of the corpus is produced to the raw topic as the connectors would publish it
(``CleanedArticle`` records), then one real `newswire pipeline --until-caught-up` process
decodes, enriches, deduplicates and writes it; what the pipeline decided is read back from
the enriched and duplicates topics. So the scores cover everything between the broker and
the consumers, not the ``Deduplicate`` transform alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from kafka import KafkaProducer

from newswire.settings import KafkaSettings
from newswire.tail import records_to_end
from newswire.testing.dedup_run import Outcome
from newswire.testing.deployment import REPO, newswire_environment, run_topics
from newswire.topics import ensure_topics
from pipeline.dedup.decide import DedupConfig
from schemas import CleanedArticle, DuplicateNotice, EnrichedArticle, decode, encode


def as_published(article: EnrichedArticle) -> CleanedArticle:
    """The record a connector would have put on the raw topic for this article."""
    fields = set(CleanedArticle.model_fields)
    return CleanedArticle.model_validate(article.model_dump(include=fields, exclude={"schema_version"}))


def run_through_kafka(
    articles: Sequence[EnrichedArticle],
    config: DedupConfig,
    batches: int,
    work: Path,
    beam_options: Sequence[str] = (),
    *,
    bootstrap: str,
    settings: Mapping[str, str] | None = None,
) -> Outcome:
    """Decisions of `newswire pipeline` runs, one per batch; ``settings`` are extra ``NEWSWIRE_*`` variables."""
    topics = run_topics(f"dedup.{uuid.uuid4().hex[:8]}")
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    ensure_topics(kafka, topics)
    env = newswire_environment(
        bootstrap,
        topics,
        {
            "NEWSWIRE_SINKS__OUTPUT_DIR": str(work / "output"),
            "NEWSWIRE_PIPELINE__DEDUP_NEAR_THRESHOLD": str(config.near_threshold),
            "NEWSWIRE_PIPELINE__BEAM_OPTIONS": json.dumps(list(beam_options)),
            "NEWSWIRE_OBSERVABILITY__METRICS_PORT": "0",
            **(settings or {}),
        },
    )
    location = config.index
    if location.redis_url is not None:
        env["NEWSWIRE_PIPELINE__DEDUP_REDIS_URL"] = location.redis_url
    else:
        env["NEWSWIRE_PIPELINE__DEDUP_INDEX"] = str(location.sqlite_path)
    size = -(-len(articles) // batches)
    pieces: list[int] = []
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        for number in range(batches):
            for article in articles[number * size : (number + 1) * size]:
                producer.send(topics.raw, key=article.article_id.encode(), value=encode(as_published(article)))
            producer.flush()
            finished = subprocess.run(
                [sys.executable, "-m", "newswire.cli", "pipeline", "--until-caught-up"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if finished.returncode != 0:
                raise SystemExit(f"newswire pipeline failed:\n{finished.stderr[-4000:]}")
            pieces.extend(_pieces_committed(finished.stderr))
    finally:
        producer.close()
    dead = list(records_to_end(kafka, topics.dead_letter))
    if dead:
        raise SystemExit(f"{len(dead)} corpus records were dead-lettered, e.g. {dead[0].value[:300]!r}")
    originals: dict[str, EnrichedArticle] = {}
    for record in records_to_end(kafka, topics.enriched):
        article = decode(record.value, EnrichedArticle)
        originals[article.article_id] = article  # consumers upsert by id: a later version replaces
    notices = [decode(record.value, DuplicateNotice) for record in records_to_end(kafka, topics.duplicates)]
    return Outcome(originals, notices, pieces)


def _pieces_committed(log: str) -> list[int]:
    """The ``pieces`` of every "batch committed" line of a service's JSON log."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not one of the service's JSON lines
        if isinstance(entry, dict) and entry.get("message") == "batch committed":
            found.append(int(entry.get("pieces", 1)))
    return found
