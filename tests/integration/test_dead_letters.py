"""Dead letters once, and `newswire dead-letters list|show|replay`, on the real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaProducer

from connectors.seeds import split_seed_text
from newswire.settings import KafkaSettings, load_settings
from newswire.testing.corpus import generated_seed_texts
from newswire.topics import topic_offsets
from schemas import CleanedArticle, DeadLetter, SourceKind, SourceRef, decode, encode
from schemas.timestamps import utc_now
from tests.integration.harness import REPO, NewswireRun, run_graph_over_raw

pytestmark = pytest.mark.integration


def _article(number: int, *, parts: int = 1) -> CleanedArticle:
    """The ``number``th generated article; with ``parts`` > 1, the bodies of that many run together."""
    texts = [split_seed_text(text) for _, text in generated_seed_texts(number + parts, seed=23)][number:]
    title, body = texts[0][0], "\n\n".join(body for _, body in texts)
    return CleanedArticle(
        article_id=f"seed-dl{number}",
        title=title,
        body=body,
        fetched_at=utc_now(),
        source=SourceRef(kind=SourceKind.SEED, name="dead-letter-test"),
    )


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 2**20)
    for key, value in records:
        producer.send(topic, key=key, value=value, partition=0)  # one partition: the order is the offsets
    producer.flush()
    producer.close()


def _newswire(run: NewswireRun, *args: str) -> subprocess.CompletedProcess[str]:
    """A `newswire` command that may fail; the caller checks its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "newswire.cli", *args],
        cwd=REPO,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _dead_letters(run: NewswireRun) -> list[tuple[bytes | None, DeadLetter]]:
    return [(key, decode(value, DeadLetter)) for key, value in run.topic_values(run.topics.dead_letter)]


def test_a_batch_that_dies_after_writing_its_dead_letters_publishes_them_once_when_it_reruns(
    newswire_run: NewswireRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = newswire_run.topics.raw
    _produce(
        newswire_run.bootstrap,
        raw,
        [
            (b"seed-dl0", encode(_article(0))),
            (b"poison", b'{"title": "no id, no body"'),
            (b"seed-dl1", encode(_article(1))),
        ],
    )
    # The first run of the batch, exactly as the service runs it, dies before its offset commit.
    for name, value in newswire_run.env.items():
        if name.startswith("NEWSWIRE_"):
            monkeypatch.setenv(name, value)
    run_graph_over_raw(load_settings())
    [(key, first)] = _dead_letters(newswire_run)
    assert first.dead_letter_id is not None and key == first.dead_letter_id.encode()

    # The restarted service re-runs the same uncommitted range, then commits it.
    newswire_run.command("pipeline", "--until-caught-up")
    letters = _dead_letters(newswire_run)
    assert [(k, d.dead_letter_id, d.offset) for k, d in letters] == [(key, first.dead_letter_id, 1)]
    assert sorted(r[0] for r in newswire_run.sqlite_rows()) == ["seed-dl0", "seed-dl1"]

    # A copy that did get through (an older newswire, a producer retry) is dropped by key on reading.
    _produce(newswire_run.bootstrap, newswire_run.topics.dead_letter, [(key, encode(first))])
    listed = newswire_run.command("dead-letters", "list")
    [line] = listed.stdout.splitlines()
    assert line.startswith(first.dead_letter_id) and "decode/invalid_record" in line and "(x2 on the topic)" in line
    assert f"{raw}/0/1" in line
    assert "1 of 1 dead letter(s) shown" in listed.stderr


def test_list_show_and_replay_a_dead_letter_after_its_cause_is_fixed(newswire_run: NewswireRun) -> None:
    raw = newswire_run.topics.raw
    # Limits too tight for one article, and a dead-letter topic that keeps only a prefix of it.
    newswire_run.env["NEWSWIRE_LIMITS__MAX_ARTICLE_BYTES"] = "100000"
    newswire_run.env["NEWSWIRE_LIMITS__MAX_DEAD_LETTER_BYTES"] = "65536"
    big = _article(2, parts=100)
    big_record = encode(big)
    assert 100_000 < len(big_record) < 2_000_000
    _produce(
        newswire_run.bootstrap,
        raw,
        [(b"seed-dl0", encode(_article(0))), (big.article_id.encode(), big_record), (b"poison", b"\xff not json")],
    )
    newswire_run.command("pipeline", "--until-caught-up")
    assert [r[0] for r in newswire_run.sqlite_rows()] == ["seed-dl0"]

    listed = newswire_run.command("dead-letters", "list", "--stage", "decode", "--type", "too_large")
    [line] = listed.stdout.splitlines()
    dead_letter_id = line.split()[0]
    assert f"{raw}/0/1" in line and "over limits.max_article_bytes=100000" in line
    assert len(newswire_run.command("dead-letters", "list", "--since", "2000-01-01").stdout.splitlines()) == 2
    assert newswire_run.command("dead-letters", "list", "--until", "2000-01-01").stdout == ""
    refused_date = _newswire(newswire_run, "dead-letters", "list", "--since", "yesterday")
    assert refused_date.returncode == 2 and "not an ISO date" in refused_date.stderr

    shown = newswire_run.command("dead-letters", "show", dead_letter_id[:10]).stdout
    assert "too_large" in shown and f"{raw}/0/1" in shown
    assert f"first {(65536 - 32768) * 3 // 4} of {len(big_record)} bytes" in shown

    # Before the fix: the original is still too large, and nothing is sent.
    kafka = KafkaSettings(bootstrap_servers=newswire_run.bootstrap)
    ends_before = topic_offsets(kafka, raw)
    refused = _newswire(newswire_run, "dead-letters", "replay", dead_letter_id)
    assert refused.returncode == 1 and "still too large" in refused.stdout, refused.stdout + refused.stderr
    dry = newswire_run.command("dead-letters", "replay", "--stage", "decode", "--type", "invalid_record", "--dry-run")
    assert f"would send: 10 bytes to {raw}" in dry.stdout
    assert topic_offsets(kafka, raw) == ends_before, "neither a refusal nor a dry run writes anything"

    # The fix: a limit that fits the article. The whole original is re-read from the raw topic and sent back.
    del newswire_run.env["NEWSWIRE_LIMITS__MAX_ARTICLE_BYTES"]
    replayed = newswire_run.command("dead-letters", "replay", dead_letter_id)
    assert f"{dead_letter_id}: sent: {len(big_record)} bytes to {raw}" in replayed.stdout
    newswire_run.command("pipeline", "--until-caught-up")
    assert sorted(r[0] for r in newswire_run.sqlite_rows()) == ["seed-dl0", big.article_id]
    enriched = {k for k, _ in newswire_run.topic_values(newswire_run.topics.enriched)}
    assert enriched == {b"seed-dl0", big.article_id.encode()}


def test_replay_refuses_what_is_not_a_raw_record(newswire_run: NewswireRun, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "001_empty.txt").write_bytes(b"")
    newswire_run.command("replay", str(seeds), "--no-progress")
    refused = _newswire(newswire_run, "dead-letters", "replay", "--stage", "replay")
    assert refused.returncode == 1 and "holds no raw record" in refused.stdout
    nothing = _newswire(newswire_run, "dead-letters", "replay")
    assert nothing.returncode == 1 and "choose what to replay" in nothing.stderr
