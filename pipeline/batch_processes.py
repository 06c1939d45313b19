"""One micro-batch over several cores: its offset ranges cut into pieces, each piece's pipeline
in a worker process of its own.

The FnApiRunner runs a pipeline's Python work on one core, and its own multi-process mode
routes every shuffle through the runner process over gRPC, which measured slower than one
process on two cores and held three times the memory. The local micro-batch service instead
cuts a batch into pieces of about the same number of records (in offset order, a piece may
span partitions; the same number for every process, and none over ``max_piece_records``, which bounds
a worker's memory whatever the batch) and runs the same graph over each piece in a forked
worker process, on the in-process runner, ``processes`` pieces at a time. The pieces share
what every worker of a distributed runner shares: the dedup index (whose transactions
decide copies whichever piece holds them, so the originals are the ones one process would
keep; a copy kept by one piece before another recorded its original is withdrawn, as a
``was_original`` notice), the sinks and the topics.

Forking keeps what the service loaded before (the language model, the gazetteer: read-only
tables, see ``pipeline/__init__.py``) shared copy-on-write instead of loaded again per
piece, and a worker's memory goes back to the system when its piece is done, so the
service's own stays flat however large the batches. The service commits a batch's offsets
only after every piece has finished; a piece that fails fails the batch, which is retried,
split and isolated as any other (``pipeline.microbatch``).

This module must never commit offsets, never run a piece in a process that outlives its
batch, and never hide a worker's failure: a worker that dies without a word (killed,
out of memory) fails the batch with its exit code.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TypeVar

from pipeline.kafka_io import PartitionRange

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

Counters = Mapping[str, int]
# What one worker runs: a batch's offset ranges in the service, a file of articles in a benchmark.
Piece = TypeVar("Piece")


class PieceFailed(RuntimeError):
    """A worker process's piece of the batch did not finish; the text is its error's."""


def split_ranges(ranges: list[PartitionRange], pieces: int) -> list[list[PartitionRange]]:
    """``ranges`` cut into at most ``pieces`` consecutive pieces of (nearly) equal record counts.

    Ranges are walked in the order given and cut at record counts, so every offset is in
    exactly one piece and a partition's offsets stay in order across the pieces.
    """
    if pieces < 1:
        raise ValueError(f"pieces must be at least 1, not {pieces}")
    total = sum(r.size for r in ranges)
    if total == 0:
        return []
    pieces = min(pieces, total)
    # Piece k ends after ceil-divided shares, so sizes differ by at most one record.
    bounds = [total * k // pieces for k in range(1, pieces + 1)]
    result: list[list[PartitionRange]] = [[] for _ in range(pieces)]
    position = 0  # records before the current range
    piece = 0
    for r in ranges:
        start, stop = r.start, r.start + r.size
        while start < stop:
            # Bounds rise strictly and the piece moves on when one is reached, so room > 0.
            take = min(bounds[piece] - position, stop - start)
            result[piece].append(PartitionRange(r.topic, r.partition, start, start + take))
            start += take
            position += take
            if position == bounds[piece] and piece < pieces - 1:
                piece += 1
    return [p for p in result if p]


def cut_batch(
    ranges: list[PartitionRange], *, processes: int, min_records: int, max_piece_records: int | None
) -> list[list[PartitionRange]]:
    """The pieces a batch of ``ranges`` runs as: itself whole with one process or fewer than
    ``min_records`` records; else a whole number of pieces per process, none over ``max_piece_records``.

    Pieces run ``processes`` at a time, so a count that is not a multiple of it would leave
    cores idle in the last round: 4,000 records in 3 pieces of 1,334 take two rounds of a
    1,334-record piece each on two processes, in 4 pieces of 1,000 two rounds of 1,000."""
    records = sum(r.size for r in ranges)
    if processes < 2 or records < min_records:
        return [ranges]
    bounded = -(-records // max_piece_records) if max_piece_records else 1
    rounds = -(-bounded // processes)
    return split_ranges(ranges, rounds * processes)


def run_pieces(
    pieces: Sequence[Piece],
    run: Callable[[Piece], Counters],
    *,
    processes: int,
    describe: Callable[[Piece], str] = str,
) -> list[Counters]:
    """``run`` over each piece in a forked worker process of its own, ``processes`` at a time;
    their counters, in piece order. ``describe`` names a piece in the failure of a worker that died.

    Once a piece has failed no further piece starts, and the answer waits for every worker
    already running, so that no piece of a failed batch is still writing when the batch is
    tried again; then ``PieceFailed`` carries the first failure's text (which keeps
    ``pipeline.dependencies``' marker of a dependency that is down).
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, not {processes}")
    context = multiprocessing.get_context("fork")
    waiting = deque(enumerate(pieces))
    running: dict[Connection, tuple[int, Piece, BaseProcess]] = {}
    results: dict[int, Counters] = {}
    failures: list[str] = []
    while waiting or running:
        while waiting and len(running) < processes and not failures:
            index, piece = waiting.popleft()
            receiver, sender = context.Pipe(duplex=False)
            started: BaseProcess = context.Process(
                target=_work, args=(sender, run, piece, os.getpid()), name="newswire-batch-piece", daemon=True
            )
            # The worker's garbage collector would write to every object inherited from here
            # (its collection counters), copying each page it touches: frozen, they stay shared.
            gc.freeze()
            try:
                started.start()
            finally:
                gc.unfreeze()
            sender.close()  # the worker holds the only writer: its exit ends our read
            running[receiver] = (index, piece, started)
        if not running:
            break  # a piece failed: the waiting ones never start
        for ready in wait(list(running)):
            assert isinstance(ready, Connection)
            index, piece, process = running.pop(ready)
            try:
                outcome, payload = ready.recv()
            except EOFError:
                outcome, payload = "died", None
            finally:
                ready.close()
            process.join()
            if outcome == "done":
                results[index] = payload
            elif outcome == "failed":
                failures.append(payload)
            else:
                failures.append(f"the worker process for {describe(piece)} exited with code {process.exitcode}")
    if failures:
        raise PieceFailed(failures[0])
    return [results[index] for index in range(len(pieces))]


def _work(sender: Connection, run: Callable[[Piece], Counters], piece: Piece, parent: int) -> None:
    # The service decides when to stop; a Ctrl-C at the terminal reaches the whole process
    # group, and the batch in flight must finish as it would in one process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with(parent)
    try:
        counters = dict(run(piece))
    except BaseException as error:  # everything reaches the service, which decides what it was
        sender.send(("failed", f"{type(error).__name__}: {error}"))
    else:
        sender.send(("done", counters))
    finally:
        sender.close()


def _die_with(parent: int) -> None:
    """End this worker as soon as the service that started it is gone (killed, crashed).

    Its batch will be run again by the next service, from its marked start; a piece still
    writing beside that re-run could publish what the re-run has already read back.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # Linux: the kernel sends the signal the moment the forking thread ends.
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    except (OSError, AttributeError):  # not Linux: look for a new parent twice a second

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="newswire-piece-watchdog", daemon=True).start()
    if os.getppid() != parent:  # the service died before the signal was asked for
        os._exit(1)


def describe_ranges(piece: list[PartitionRange]) -> str:
    return ", ".join(r.label for r in piece)


def merge_counters(counters: list[Counters]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for piece in counters:
        for name, value in piece.items():
            totals[name] = totals.get(name, 0) + value
    return totals
