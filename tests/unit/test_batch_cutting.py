"""How a micro-batch is cut over worker processes (pure logic; the processes themselves run in
tests/integration/test_batch_processes.py)."""

from __future__ import annotations

import pytest

from pipeline.batch_processes import cut_batch, merge_counters, split_ranges
from pipeline.kafka_io import PartitionRange


def _offsets(pieces: list[list[PartitionRange]]) -> list[tuple[int, int]]:
    return [(r.partition, offset) for piece in pieces for r in piece for offset in range(r.start, r.stop or r.start)]


def test_every_offset_lands_in_exactly_one_piece_in_order_and_the_pieces_are_even() -> None:
    ranges = [PartitionRange("raw", 0, 10, 17), PartitionRange("raw", 1, 0, 2), PartitionRange("raw", 2, 5, 11)]
    pieces = split_ranges(ranges, 2)
    assert _offsets(pieces) == _offsets([ranges])
    assert [sum(r.size for r in piece) for piece in pieces] == [7, 8]
    # A partition cut between two pieces keeps its offsets in order: the lower ones first.
    assert pieces[0] == [PartitionRange("raw", 0, 10, 17)]
    assert pieces[1] == [PartitionRange("raw", 1, 0, 2), PartitionRange("raw", 2, 5, 11)]


def test_three_partitions_over_two_processes_cut_the_middle_partition() -> None:
    ranges = [PartitionRange("raw", p, 0, 2000) for p in range(3)]
    first, second = split_ranges(ranges, 2)
    assert first == [PartitionRange("raw", 0, 0, 2000), PartitionRange("raw", 1, 0, 1000)]
    assert second == [PartitionRange("raw", 1, 1000, 2000), PartitionRange("raw", 2, 0, 2000)]


def test_no_more_pieces_than_records_and_none_empty() -> None:
    ranges = [PartitionRange("raw", 0, 4, 6), PartitionRange("raw", 1, 3, 3)]
    pieces = split_ranges(ranges, 8)
    assert pieces == [[PartitionRange("raw", 0, 4, 5)], [PartitionRange("raw", 0, 5, 6)]]
    assert split_ranges([PartitionRange("raw", 0, 3, 3)], 2) == []
    with pytest.raises(ValueError, match="at least 1"):
        split_ranges(ranges, 0)


def test_the_counters_of_the_pieces_add_up() -> None:
    assert merge_counters([{"kafka.records_read": 3, "dedup.demoted": 1}, {"kafka.records_read": 4}]) == {
        "kafka.records_read": 7,
        "dedup.demoted": 1,
    }


def test_a_batch_is_cut_in_one_piece_per_process_and_more_when_pieces_would_be_too_large() -> None:
    ranges = [PartitionRange("raw", 0, 0, 600), PartitionRange("raw", 1, 0, 400)]
    assert cut_batch(ranges, processes=1, min_records=1, max_piece_records=100) == [ranges]
    assert cut_batch(ranges, processes=2, min_records=1001, max_piece_records=100) == [ranges], "too small to cut"
    assert len(cut_batch(ranges, processes=2, min_records=2, max_piece_records=None)) == 2
    assert len(cut_batch(ranges, processes=2, min_records=2, max_piece_records=600)) == 2
    bounded = cut_batch(ranges, processes=2, min_records=2, max_piece_records=300)
    assert [sum(r.size for r in piece) for piece in bounded] == [250, 250, 250, 250]
    assert _offsets(bounded) == _offsets([ranges])
    # 1,000 records at 400 a piece would be 3 pieces, one of them alone on its round: 4 fill both processes.
    rounded = cut_batch(ranges, processes=2, min_records=2, max_piece_records=400)
    assert [sum(r.size for r in piece) for piece in rounded] == [250, 250, 250, 250]
    assert len(cut_batch(ranges, processes=3, min_records=2, max_piece_records=300)) == 6
