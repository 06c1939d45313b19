"""The two inner loops of signing an article, compiled: FNV-1a over runs of code points, and MinHash.

In NumPy these could only be whole-array steps: one pass over every term per character
position for FNV-1a (each code point folds into the hash the one before it left), and the
whole (permutation x member) product in memory before its minima. Compiled, each is one
loop that keeps its running value in a register: sign, a third of the pipeline's own work
an article, costs about half as much. They compute exactly what those NumPy forms computed,
bit for bit (``tests/unit/test_dedup_signature_reference.py``): a signature and its band keys
are what copies meet by across workers, restarts and indexes filled long ago.

Numba compiles on first use and caches the machine code (``pipeline.compiled``), so a worker
pays the compilation once per machine, not per process; ``load`` does it before the local
service forks its batch workers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.compiled import compiled

# FNV-1a's 64-bit offset basis and prime; SplitMix64's finaliser multipliers (signature._mix too).
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@compiled
def fnv_of_runs(
    points: npt.NDArray[np.uint32], starts: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """FNV-1a over each run ``points[start : start + length]`` of code points, then SplitMix64's finaliser."""
    hashes = np.empty(starts.size, dtype=np.uint64)
    for run in range(starts.size):
        folded = FNV_OFFSET
        for at in range(starts[run], starts[run] + lengths[run]):
            folded = (folded ^ np.uint64(points[at])) * FNV_PRIME
        folded = (folded ^ (folded >> np.uint64(30))) * MIX_1
        folded = (folded ^ (folded >> np.uint64(27))) * MIX_2
        hashes[run] = folded ^ (folded >> np.uint64(31))
    return hashes


@compiled
def min_hashes(
    multipliers: npt.NDArray[np.uint64], offsets: npt.NDArray[np.uint64], members: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint32]:
    """Per permutation ``a * x + b`` (wrapping, multiply-shift), its minimum over the members, top 32 bits.

    One permutation at a time over all members, its running minimum in a register: the
    NumPy form wrote the whole product to memory first. ``members`` must not be empty.
    """
    signature = np.empty(multipliers.size, dtype=np.uint32)
    for permutation in range(multipliers.size):
        multiplier, offset = multipliers[permutation], offsets[permutation]
        lowest = _ALL_ONES
        for member in members:
            lowest = min(lowest, multiplier * member + offset)
        signature[permutation] = np.uint32(lowest >> np.uint64(32))
    return signature


def load() -> None:
    """Compile both loops (or load them from the cache) now, rather than on the first article."""
    one = np.ones(1, dtype=np.intp)
    fnv_of_runs(np.ones(1, dtype=np.uint32), np.zeros(1, dtype=np.intp), one)
    fnv_of_runs(np.frombuffer(b"\1\0\0\0", dtype=np.uint32), np.zeros(1, dtype=np.intp), one)  # read-only input
    words = np.ones(1, dtype=np.uint64)
    min_hashes(words, words, words)
