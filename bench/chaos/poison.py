"""The chaos benchmark's poison: records of every bad kind, written straight to the raw topic.

Each kind says what a service that nothing stops must do with it: dead-letter it exactly
once (invalid JSON, missing fields, non-UTF-8, 5 MB, a row PostgreSQL refuses), publish it
(a valid article whose text carries NUL characters), or either (a valid 1.5 MB article may
be carried end to end or refused where it enters). An article that makes an enricher raise
must flow on without that enricher's fields; the failure may also be dead-lettered, once, so
an operator can replay it after fixing the enricher. Where each record landed
(partition, offset) is kept, so its dead letter can be found by its coordinates.

Inputs used, plainly:
- the enricher: a real dateline whose place is longer than the 100 characters a
  ``Dateline`` holds, so ``DatelineEnricher`` raises a ValidationError;
- the sink: the PostgreSQL sink replaces NUL before writing, so NUL does not make it raise;
  instead the benchmark's database carries a CHECK constraint (``REFUSE_CONSTRAINT``) that
  refuses articles whose body holds ``REFUSED_MARKER``: a real refusal by PostgreSQL,
  standing in for any row a database rejects.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from psycopg import sql

from connectors.seeds import split_seed_text
from newswire.testing.corpus import generated_seed_texts
from newswire.testing.postgres import PostgresServer
from schemas import CleanedArticle, SourceKind, SourceRef, encode
from schemas.timestamps import utc_now

# A real place (the hill in Hawke's Bay, New Zealand) written as wire datelines write it.
LONG_DATELINE = (
    "TAUMATAWHAKATANGIHANGAKOAUAUOTAMATEATURIPUKAKAPIKIMAUNGAHORONUKUPOKAIWHENUAKITANATAHU HILL NEAR PORANGAHAU — "
)
REFUSED_MARKER = "[refused by the chaos database]"
REFUSE_CONSTRAINT = "chaos_refuses_marked_articles"


class Kind(StrEnum):
    INVALID_JSON = "invalid JSON"
    MISSING_FIELDS = "missing fields"
    NON_UTF8 = "non-UTF-8"
    OVERSIZED = "5 MB value"
    LARGE_VALID = "valid 1.5 MB article"
    ENRICHER_RAISES = "enricher raises"
    SINK_REFUSES = "sink write raises"
    NUL_TEXT = "NUL in text"


class Expect(StrEnum):
    DEAD_LETTER = "dead-lettered once"
    ARRIVE = "in every sink"
    EITHER = "in every sink, or dead-lettered once"
    FLOWS_ON = "in every sink; a dead letter at most once"


EXPECTED = {
    Kind.INVALID_JSON: Expect.DEAD_LETTER,
    Kind.MISSING_FIELDS: Expect.DEAD_LETTER,
    Kind.NON_UTF8: Expect.DEAD_LETTER,
    Kind.OVERSIZED: Expect.DEAD_LETTER,
    Kind.LARGE_VALID: Expect.EITHER,
    Kind.ENRICHER_RAISES: Expect.FLOWS_ON,
    Kind.SINK_REFUSES: Expect.DEAD_LETTER,
    Kind.NUL_TEXT: Expect.ARRIVE,
}
# The big ones are few whatever the size: a handful proves the point, dozens only cost memory.
_AT_MOST = {Kind.OVERSIZED: 3, Kind.LARGE_VALID: 3}


@dataclass
class Poison:
    kind: Kind
    key: str
    value: bytes
    # Set for the kinds that are valid articles.
    article_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    # Why the broker refused the record at produce, when it did (refused where it enters).
    refused: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.value).hexdigest()


def _article(article_id: str, title: str, body: str) -> bytes:
    return encode(
        CleanedArticle(
            article_id=article_id,
            title=title,
            body=body,
            language="en",
            fetched_at=utc_now(),
            source=SourceRef(kind=SourceKind.SEED, name="chaos-poison"),
        )
    )


def poison_records(total: int, *, seed: int) -> list[Poison]:
    """``total`` poison records (at least one of every kind), interleaved by kind."""
    kinds = list(Kind)
    per_kind = max(1, round(total / len(kinds)))
    counts = {kind: min(per_kind, _AT_MOST.get(kind, per_kind)) for kind in kinds}
    uncapped = [kind for kind in kinds if kind not in _AT_MOST]
    for number in range(max(0, total - sum(counts.values()))):
        counts[uncapped[number % len(uncapped)]] += 1
    # Lazy, and far more than needed: the 1.5 MB bodies draw hundreds of texts each.
    texts = generated_seed_texts(10**7, seed=seed + 1000)

    def text() -> tuple[str, str]:
        return split_seed_text(next(texts)[1])

    def long_body(size: int) -> str:
        parts: list[str] = []
        while sum(len(p) for p in parts) < size:
            parts.append(text()[1].strip())
        return "\n\n".join(parts)

    records: list[Poison] = []
    made = dict.fromkeys(Kind, 0)
    while any(made[k] < counts[k] for k in kinds):
        for kind in kinds:
            if made[kind] >= counts[kind]:
                continue
            made[kind] += 1
            slug = kind.name.lower().replace("_", "-")
            article_id = f"seed-chaos-{slug}-{made[kind]:03d}"  # fixed width: no id is a prefix of another
            title, body = text()
            value: bytes
            if kind is Kind.INVALID_JSON:
                value = b'{"article_id": "' + article_id.encode() + b'", "title": "cut off mid-'
            elif kind is Kind.MISSING_FIELDS:
                value = b'{"article_id": "' + article_id.encode() + b'", "title": "no body, no source"}'
            elif kind is Kind.NON_UTF8:
                value = _article(article_id, title, body).replace(b'"title":"', b'"title":"\xff\xfe Latin-1 \xe9 ', 1)
            elif kind is Kind.OVERSIZED:
                # Real text repeated: gzip shrinks it, so it gets onto the raw topic as a 5 MB record.
                chunk = body.strip() + "\n\n"
                value = _article(article_id, title, (chunk * (5_000_000 // len(chunk) + 1))[:5_000_000])
            elif kind is Kind.LARGE_VALID:
                value = _article(article_id, title, long_body(1_500_000))
            elif kind is Kind.ENRICHER_RAISES:
                value = _article(article_id, title, LONG_DATELINE + body)
            elif kind is Kind.SINK_REFUSES:
                value = _article(article_id, title, f"{body.strip()}\n\n{REFUSED_MARKER}")
            else:
                paragraphs = body.split("\n\n")
                paragraphs[0] = paragraphs[0].replace(" ", " \x00", 1)
                value = _article(article_id, title, "\n\n".join(paragraphs))
            valid = kind in (Kind.LARGE_VALID, Kind.ENRICHER_RAISES, Kind.SINK_REFUSES, Kind.NUL_TEXT)
            records.append(Poison(kind, article_id, value, article_id if valid else None))
    return records


def refuse_marked_articles(database: PostgresServer, table: str) -> None:
    """Give the sink's (already created) table the CHECK constraint that refuses marked articles."""
    with database.connect(autocommit=True) as db:
        db.execute(
            sql.SQL("ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (strpos(body, {marker}) = 0)").format(
                table=sql.Identifier(table), name=sql.Identifier(REFUSE_CONSTRAINT), marker=sql.Literal(REFUSED_MARKER)
            )
        )


class PoisonWriter:
    """Writes poison to the raw topic as any other producer would, and notes where each landed."""

    def __init__(self, producer_config: Mapping[str, Any], topic: str) -> None:
        self._topic = topic
        self._producer = KafkaProducer(
            **producer_config,
            acks="all",
            compression_type="gzip",
            # Larger than any poison: what the broker and topic accept is theirs to decide.
            max_request_size=8 * 2**20,
            retries=5,
        )

    def write(self, records: list[Poison], *, deadline: float) -> list[str]:
        """Write ``records``; retries while the broker is away, until ``deadline`` (monotonic).
        Returns a line per record that could not be written."""
        problems = []
        for record in records:
            while True:
                try:
                    metadata = self._producer.send(self._topic, key=record.key.encode(), value=record.value).get(
                        timeout=30
                    )
                    record.partition, record.offset = metadata.partition, metadata.offset
                    break
                except MessageSizeTooLargeError as error:
                    record.refused = f"{type(error).__name__}: {error}"
                    break
                except KafkaError as error:
                    if time.monotonic() > deadline:
                        problems.append(f"{record.kind} {record.key}: not written ({error})")
                        break
                    time.sleep(1)
        return problems

    def close(self) -> None:
        self._producer.close(timeout=10)
