"""What `newswire dead-letters` shows: filters, ids by prefix, one entry per dead_letter_id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newswire.dead_letters import DeadLetterFilter, DeadLetterTopic, StoredDeadLetter, list_lines, show_lines
from schemas import DeadLetter

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _letter(offset: int, *, stage: str = "decode", error_type: str = "invalid_record", hour: int = 9) -> DeadLetter:
    return DeadLetter.of(
        stage=stage,
        error_type=error_type,
        error="record is not valid JSON",
        original=b"x" * 1000,
        max_original_bytes=100,
        topic="raw",
        partition=0,
        offset=offset,
        source_name="wire",
        source_url="https://news.example/a",
        occurred_at=T0.replace(hour=hour),
    )


def test_filters_match_stage_type_source_and_time() -> None:
    letter = _letter(1)
    assert DeadLetterFilter(stage="decode", error_type="invalid_record").accepts(letter)
    assert not DeadLetterFilter(stage="fetch").accepts(letter)
    assert DeadLetterFilter(source="wire").accepts(letter) and DeadLetterFilter(source="news.example").accepts(letter)
    assert not DeadLetterFilter(source="other").accepts(letter)
    assert DeadLetterFilter(since=T0).accepts(letter) and not DeadLetterFilter(until=T0).accepts(letter)
    assert not DeadLetterFilter().active() and DeadLetterFilter(stage="decode").active()


def test_find_takes_a_unique_prefix_and_refuses_an_ambiguous_one() -> None:
    stored = [StoredDeadLetter(_letter(n), 0, n) for n in range(40)]
    topic = DeadLetterTopic(tuple(stored), undecodable=0)
    first = stored[0]
    assert topic.find(first.id) is first and topic.find(first.id[:12]) is first
    with pytest.raises(LookupError, match="give more of the id"):
        topic.find("")
    with pytest.raises(LookupError, match="no dead letter"):
        topic.find("not-an-id")


def test_a_line_and_a_page_say_where_it_came_from_and_how_much_is_kept() -> None:
    stored = StoredDeadLetter(_letter(7), 2, 40, copies=3)
    [line] = list_lines([stored])
    assert line.startswith(stored.id) and "decode/invalid_record" in line and "raw/0/7" in line and "(x3" in line
    page = "\n".join(show_lines(stored))
    assert "first 100 of 1000 bytes" in page and "raw/0/7" in page and "3 copies (drop repeats by key)" in page
