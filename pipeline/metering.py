"""Beam counters that say what each stage took in and let out, read off the PCollections themselves.

A stage's own DoFn counts the records it takes in and lets out where it has one that sees
each of them (``stage_counter``: decode, dedup); elsewhere counting happens on a side branch
of the graph (a DoFn that counts and emits nothing), at the points where records cross a
stage boundary or leave for a topic. Either way a count is always the number of records
that really went that way: the duplicates counted are the notices written, every layer
included, and the dead letters counted are the ones published. A side branch costs a DoFn
call per element, so one branch counts every boundary of one PCollection. These counters
reach ``BatchReport.counters`` as ``<namespace>.<name>``; ``newswire.metrics`` names them for
Prometheus. This module must never hold state across elements or reach outside Beam's metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas import DeadLetter, DuplicateNotice

STAGE = "stage"  # stage.<stage>.in / stage.<stage>.out
DUPLICATES = "duplicates"  # duplicates.<layer>: notices of arrivals found to be copies
DEMOTED = "demoted"  # demoted.<layer>: published articles withdrawn as copies of a later arrival
DEAD_LETTER = "dead_letter"  # dead_letter.<stage>.<error_type> (the contract's namespace)


class _CountEach(beam.DoFn):  # type: ignore[misc]
    def __init__(self, counter_of: Callable[[Any], tuple[str, str]]) -> None:
        self._counter_of = counter_of

    def process(self, element: Any) -> None:
        # Beam caches counters by name, so a per-element lookup costs a dict hit.
        Metrics.counter(*self._counter_of(element)).inc()


class CountRecords(beam.PTransform):  # type: ignore[misc]
    """Counts every element of a PCollection under the (namespace, name) ``counter_of`` gives it; outputs nothing."""

    def __init__(self, counter_of: Callable[[Any], tuple[str, str]]) -> None:
        super().__init__()
        self._counter_of = counter_of

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        return elements | beam.ParDo(_CountEach(self._counter_of))


def stage_counter(stage: str, direction: str) -> Any:
    """The ``stage.<stage>.<direction>`` counter, for a stage's DoFn that sees each record it takes in or lets out."""
    return Metrics.counter(STAGE, f"{stage}.{direction}")


class _CountBoundaries(beam.DoFn):  # type: ignore[misc]
    def __init__(self, boundaries: tuple[tuple[str, str], ...]) -> None:
        self._counters = [stage_counter(stage, direction) for stage, direction in boundaries]

    def process(self, element: Any) -> None:
        for counter in self._counters:
            counter.inc()


class _StageRecords(beam.PTransform):  # type: ignore[misc]
    def __init__(self, boundaries: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self._boundaries = boundaries

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        return elements | beam.ParDo(_CountBoundaries(self._boundaries))


def stage_records(*boundaries: tuple[str, str]) -> beam.PTransform:
    """``stage.<stage>.<direction>`` for each (stage, direction) given: the records of one
    PCollection are what one stage lets out and the next takes in; outputs nothing."""
    if not boundaries:
        raise ValueError("stage_records needs at least one (stage, direction)")
    return _StageRecords(tuple(boundaries))


def _notice_counter(notice: DuplicateNotice) -> tuple[str, str]:
    return (DEMOTED if notice.was_original else DUPLICATES, notice.layer.value)


def duplicate_notices() -> CountRecords:
    """``duplicates.<layer>`` for arrivals found to be copies, ``demoted.<layer>`` for withdrawn originals."""
    return CountRecords(_notice_counter)


def _dead_letter_counter(dead_letter: DeadLetter) -> tuple[str, str]:
    return (DEAD_LETTER, f"{dead_letter.stage}.{dead_letter.error_type}")


def dead_letters() -> CountRecords:
    """``dead_letter.<stage>.<error_type>`` for every dead letter published."""
    return CountRecords(_dead_letter_counter)
