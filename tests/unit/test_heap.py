"""Handing freed heap back: what lets the service fork batch workers without the loads' garbage."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.heap import release_freed_heap


def _resident_kib() -> int:
    match = re.search(r"^VmRSS:\s+(\d+)", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads resident memory from /proc")
def test_freed_heap_between_live_objects_goes_back_to_the_system() -> None:
    # 1 KiB objects come from the C allocator (not Python's small-object arenas); keeping
    # every hundredth pins the heap's top, so only an explicit trim returns the runs between.
    chunks = [os.urandom(1) * 1024 for _ in range(150_000)]
    kept = chunks[::100]
    del chunks
    before = _resident_kib()
    if not release_freed_heap():
        pytest.skip("this C library has no malloc_trim")
    after = _resident_kib()
    assert before - after > 100_000, (before, after)  # of the ~146 MiB freed
    assert len(kept) == 1_500
