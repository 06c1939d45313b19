"""Seeds -> real Kafka -> real Beam pipeline -> sinks, through the real `newswire` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import DeadLetter, DuplicateNotice, EnrichedArticle, decode
from tests.integration.harness import REPO, NewswireRun

pytestmark = pytest.mark.integration
SEED_ID = "seed-0a8afec63f5aff32"


def test_seed_article_arrives_repaired_exactly_once_even_when_replayed_twice(newswire_run: NewswireRun) -> None:
    newswire_run.command("replay", str(REPO / "seeds"), "--no-progress")
    newswire_run.command("pipeline", "--until-caught-up")
    newswire_run.command("replay", str(REPO / "seeds"), "--no-progress")
    newswire_run.command("pipeline", "--until-caught-up")

    raw = newswire_run.topic_values(newswire_run.topics.raw)
    assert [key for key, _ in raw] == [SEED_ID.encode()] * 2, "both replays reached the raw topic"

    enriched = [decode(value, EnrichedArticle) for _, value in newswire_run.topic_values(newswire_run.topics.enriched)]
    assert [a.article_id for a in enriched] == [SEED_ID]
    article = enriched[0]
    assert article.body.startswith("The Leader made the remarks")
    assert article.title == "Leader Urges Mounting Political Pressure on US, Israel to Stop Gaza Massacre"
    assert article.detected_language is not None and article.detected_language.code == "en"
    assert article.word_count is not None and article.word_count > 500

    duplicates = [decode(v, DuplicateNotice) for _, v in newswire_run.topic_values(newswire_run.topics.duplicates)]
    assert [(d.article_id, d.duplicate_of, d.layer.value) for d in duplicates] == [(SEED_ID, SEED_ID, "article_id")]

    rows = newswire_run.sqlite_rows("SELECT article_id, title, substr(body, 1, 27), language FROM articles")
    assert rows == [(SEED_ID, article.title, "The Leader made the remarks", "en")]
    lines = newswire_run.jsonl_lines()
    assert [json.loads(line)["article_id"] for line in lines] == [SEED_ID]
    for query in ("Sudani", "Arbaeen", "sudani tehran"):
        found = newswire_run.command("search", query, "--lang", "en")
        assert found.stdout.startswith(SEED_ID), f"search {query!r}: {found.stdout}"
    assert json.loads(lines[0])["body"].startswith("The Leader made the remarks")


def test_a_poison_record_goes_to_dead_letters_and_the_good_ones_around_it_arrive(newswire_run: NewswireRun) -> None:
    from kafka import KafkaProducer

    from connectors.seeds import split_seed_text
    from newswire.testing.corpus import generated_seed_texts
    from schemas import CleanedArticle, SourceKind, SourceRef, encode
    from schemas.timestamps import utc_now

    def article(number: int) -> bytes:
        _, text = list(generated_seed_texts(number + 1))[number]
        title, body = split_seed_text(text)
        return encode(
            CleanedArticle(
                article_id=f"seed-good{number}",
                title=title,
                body=body,
                fetched_at=utc_now(),
                source=SourceRef(kind=SourceKind.SEED, name="test"),
            )
        )

    producer = KafkaProducer(bootstrap_servers=newswire_run.bootstrap)
    topic = newswire_run.topics.raw
    # All on one partition so the poison sits between the good records.
    producer.send(topic, key=b"seed-good0", value=article(0), partition=0)
    producer.send(topic, key=b"poison", value=b'{"title": "no id, no body"', partition=0)
    producer.send(topic, key=b"poison2", value=b"\xff\xfe not utf-8", partition=0)
    producer.send(topic, key=b"seed-good1", value=article(1), partition=0)
    producer.flush()
    producer.close()

    newswire_run.command("pipeline", "--until-caught-up")

    enriched = sorted(k or b"" for k, _ in newswire_run.topic_values(newswire_run.topics.enriched))
    assert enriched == [b"seed-good0", b"seed-good1"]
    dead = [decode(v, DeadLetter) for _, v in newswire_run.topic_values(newswire_run.topics.dead_letter)]
    assert sorted((d.key, d.offset, d.stage) for d in dead) == [("poison", 1, "decode"), ("poison2", 2, "decode")]
    by_key = {d.key: d for d in dead}
    assert by_key["poison"].error.startswith("record is not valid JSON")
    assert by_key["poison"].original == b'{"title": "no id, no body"'
    assert "not UTF-8" in by_key["poison2"].error
    assert sorted(r[0] for r in newswire_run.sqlite_rows()) == ["seed-good0", "seed-good1"]


def test_malformed_seed_files_are_reported_and_dead_lettered(newswire_run: NewswireRun, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "001_good.txt").write_text("A good title\n\nA good body paragraph.\n")
    (seeds / "002_empty.txt").write_bytes(b"")
    (seeds / "003_binary.txt").write_bytes(b"\x00\x01\x02binary\x00")
    result = newswire_run.command("replay", str(seeds), "--no-progress")
    assert "replayed 1 article(s), skipped 2" in result.stdout
    assert "002_empty.txt" in result.stderr and "003_binary.txt" in result.stderr
    dead = [decode(v, DeadLetter) for _, v in newswire_run.topic_values(newswire_run.topics.dead_letter)]
    assert sorted((d.source_name, d.error_type) for d in dead) == [
        ("002_empty.txt", "no_title"),
        ("003_binary.txt", "binary"),
    ]


def test_tail_prints_the_enriched_seed_and_sigterm_finishes_cleanly(newswire_run: NewswireRun) -> None:
    import signal
    import time

    newswire_run.command("replay", str(REPO / "seeds"), "--no-progress")
    service = newswire_run.start("pipeline")
    tail = newswire_run.command("tail", "enriched", "--from-beginning", "--limit", "1", "--timeout", "120")
    assert f"{SEED_ID} [en] Leader Urges Mounting Political Pressure" in tail.stdout
    time.sleep(1)
    service.send_signal(signal.SIGTERM)
    output, _ = service.communicate(timeout=120)
    assert service.returncode == 0, output
    assert "stop requested; finishing the work in flight" in output
    assert len(newswire_run.sqlite_rows()) == 1


def test_dedup_explain_shows_each_layer_and_the_decision(newswire_run: NewswireRun, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    original = (REPO / "seeds" / "000_0a8afec63f5aff32.txt").read_text()
    (seeds / "000_0a8afec63f5aff32.txt").write_text(original)
    # A wire copy: same story with its last paragraph dropped, under another id.
    (seeds / "001_wirecopy.txt").write_text(original.rsplit("\n\n", 1)[0] + "\n")
    newswire_run.command("replay", str(seeds), "--no-progress")
    newswire_run.command("pipeline", "--until-caught-up")
    duplicates = [decode(v, DuplicateNotice) for _, v in newswire_run.topic_values(newswire_run.topics.duplicates)]
    assert [(d.article_id, d.duplicate_of, d.layer.value) for d in duplicates] == [
        ("seed-wirecopy", SEED_ID, "near_duplicate")
    ]
    explained = newswire_run.command("dedup", "explain", SEED_ID, "seed-wirecopy").stdout
    assert "near_duplicate" in explained and SEED_ID in explained and "seed-wirecopy" in explained
    print(explained)
