"""Giving the operating system back the heap that one-off loads freed.

Building the gazetteer parses ~70 MB of place data into Python objects and keeps a tenth
of it; the C allocator keeps the freed rest mapped, so a worker stays ~90 MiB larger than
what it holds, and every batch worker forked from the local service counts those pages
again. Called once after the loads, never per article.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache  # which C library this process runs on does not change
def _malloc_trim() -> Callable[[int], int] | None:
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return trim  # glibc has it; musl and macOS do not, and return freed memory by themselves or not at all


def release_freed_heap() -> bool:
    """Return free heap pages to the operating system (glibc's ``malloc_trim``); whether this C library can."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
