"""What arrived where after a chaos run: read back from every sink and topic, never assumed.

It reads the SQLite and JSON Lines sinks, the PostgreSQL table, the enriched, raw,
duplicates and dead-letter topics, and counts per article id, so that "lost" and "doubled"
are facts about the outputs. Dead letters are matched to the poison records that caused
them by their coordinates (raw topic, partition, offset), else by key or article id, and
counted twice: as published, and after dropping repeats by ``dead_letter_id`` as the topic
contract tells consumers to.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.poison import EXPECTED, Expect, Kind, Poison
from newswire.settings import KafkaSettings, TopicSettings
from newswire.tail import records_to_end
from newswire.testing.postgres import PostgresServer
from schemas import DeadLetter, RecordDecodeError, decode

SINKS = ("PostgreSQL", "SQLite", "JSON Lines", "enriched topic")


@dataclass
class Outputs:
    """Article ids as each output holds them (a list: an id twice is an article written twice)."""

    by_sink: dict[str, list[str]]
    # JSON Lines records of the poison articles, to see what the enrichers recorded.
    poison_records: dict[str, dict[str, object]]
    raw_keys: Counter[str]
    duplicates: int
    dead_letters: list[DeadLetter]
    undecodable_dead_letters: int
    read_errors: list[str] = field(default_factory=list)


def sqlite_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return [row[0] for row in db.execute("SELECT article_id FROM articles")]
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        db.close()


def sqlite_count(path: Path) -> int | None:
    """Articles in the SQLite sink, or None while it cannot be read (a write in progress)."""
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5)
        try:
            return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return None


def read_outputs(
    *, sqlite_path: Path, jsonl_path: Path, postgres: PostgresServer, table: str, kafka: KafkaSettings,
    topics: TopicSettings, poison_ids: set[str],
) -> Outputs:  # fmt: skip
    errors: list[str] = []
    jsonl: list[str] = []
    poison_records: dict[str, dict[str, object]] = {}
    if jsonl_path.exists():
        with jsonl_path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    errors.append(f"{jsonl_path.name} line {number} is not JSON (a torn write?)")
                    continue
                jsonl.append(record["article_id"])
                if record["article_id"] in poison_ids:
                    poison_records[record["article_id"]] = record
    try:
        with postgres.connect(connect_timeout=10) as db:
            postgres_ids = [row[0] for row in db.execute(f"SELECT article_id FROM {table}")]  # our own, validated name
    except Exception as error:  # the table may never have been written
        errors.append(f"PostgreSQL: {error}")
        postgres_ids = []
    enriched = [_key(m.key) for m in records_to_end(kafka, topics.enriched)]
    raw_keys = Counter(_key(m.key) for m in records_to_end(kafka, topics.raw))
    duplicates = sum(1 for _ in records_to_end(kafka, topics.duplicates))
    dead_letters, undecodable = [], 0
    for message in records_to_end(kafka, topics.dead_letter):
        try:
            dead_letters.append(decode(message.value, DeadLetter))
        except RecordDecodeError:
            undecodable += 1
    return Outputs(
        by_sink={
            "PostgreSQL": postgres_ids,
            "SQLite": sqlite_ids(sqlite_path),
            "JSON Lines": jsonl,
            "enriched topic": enriched,
        },
        poison_records=poison_records,
        raw_keys=raw_keys,
        duplicates=duplicates,
        dead_letters=dead_letters,
        undecodable_dead_letters=undecodable,
        read_errors=errors,
    )


def _key(key: bytes | None) -> str:
    return key.decode("utf-8", "replace") if key is not None else ""


@dataclass(frozen=True)
class SinkFigures:
    sink: str
    arrived: int
    lost: int
    doubled: int


def sink_figures(outputs: Outputs, expected: set[str]) -> list[SinkFigures]:
    rows = []
    for sink in SINKS:
        counts = Counter(outputs.by_sink[sink])
        rows.append(
            SinkFigures(
                sink=sink,
                arrived=len(expected & counts.keys()),
                lost=len(expected - counts.keys()),
                doubled=sum(1 for n in counts.values() if n > 1),
            )
        )
    return rows


@dataclass(frozen=True)
class DeadLetterFigures:
    stage: str
    error_type: str
    published: int
    distinct: int


def dead_letter_figures(dead_letters: Iterable[DeadLetter]) -> list[DeadLetterFigures]:
    published: Counter[tuple[str, str]] = Counter()
    distinct: dict[tuple[str, str], set[str]] = {}
    for number, letter in enumerate(dead_letters):
        kind = (letter.stage, letter.error_type)
        published[kind] += 1
        # One without an id cannot be dropped as a repeat: each counts as distinct.
        distinct.setdefault(kind, set()).add(letter.dead_letter_id or f"(no id #{number})")
    return [DeadLetterFigures(s, t, n, len(distinct[(s, t)])) for (s, t), n in sorted(published.items())]


@dataclass(frozen=True)
class PoisonOutcome:
    poison: Poison
    dead_letters_published: int
    dead_letters_distinct: int
    in_sinks: tuple[str, ...]
    note: str
    ok: bool


def _matches(letter: DeadLetter, poison: Poison, raw_topic: str) -> bool:
    if letter.topic == raw_topic and letter.partition is not None and letter.offset is not None:
        return (letter.partition, letter.offset) == (poison.partition, poison.offset)
    if letter.key == poison.key or (poison.article_id and letter.key == poison.article_id):
        return True
    if letter.original_sha256 is not None and letter.original_sha256 == poison.sha256:
        return True
    marker = poison.key
    return marker in (letter.error or "") or (letter.original is not None and marker.encode() in letter.original[:4096])


def poison_outcomes(poison: list[Poison], outputs: Outputs, raw_topic: str) -> list[PoisonOutcome]:
    present = {sink: set(ids) for sink, ids in outputs.by_sink.items()}
    results = []
    for record in poison:
        letters = [d for d in outputs.dead_letters if _matches(d, record, raw_topic)]
        distinct = len({d.dead_letter_id or f"(no id #{n})" for n, d in enumerate(letters)})
        in_sinks = tuple(s for s in SINKS if record.article_id and record.article_id in present[s])
        expect = EXPECTED[record.kind]
        everywhere = len(in_sinks) == len(SINKS)
        note = ""
        if record.refused:
            ok, note = True, "refused by the broker where it entered"
        elif record.partition is None:
            ok, note = False, "never written (the benchmark could not produce it)"
        elif expect is Expect.DEAD_LETTER:
            ok = distinct == 1 and (record.kind is Kind.SINK_REFUSES or not in_sinks)
        elif expect is Expect.ARRIVE:
            ok = everywhere and distinct == 0
        elif expect is Expect.FLOWS_ON:
            ok = everywhere and distinct <= 1
        else:
            ok = (everywhere and distinct == 0) or (distinct == 1 and not everywhere)
        if record.kind is Kind.ENRICHER_RAISES and everywhere and record.article_id:
            failures = outputs.poison_records.get(record.article_id, {}).get("enrichment_failures") or []
            note = "flowed on; dateline failure recorded" if failures else "flowed on; NO enrichment failure recorded"
        results.append(PoisonOutcome(record, len(letters), distinct, in_sinks, note, ok))
    return results
