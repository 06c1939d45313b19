"""The pipeline's compiled loops: cached on disk where numba can write, still compiled where it cannot."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from numba.core import caching

from pipeline.compiled import compiled
from pipeline.dedup import kernels


def _twice(value: int) -> int:
    return 2 * value


def test_a_loop_compiles_where_no_cache_location_is_writable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A read-only image with no home: numba finds no place to cache, and refuses cache=True at import.
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    with pytest.raises(RuntimeError, match="no locator available"):
        caching.FunctionCache(_twice)
    with caplog.at_level(logging.WARNING, logger="pipeline.compiled"):
        fast = compiled(_twice)
    assert fast(21) == 42
    assert isinstance(fast._cache, caching.NullCache)  # type: ignore[attr-defined]
    assert "cannot be cached on disk" in caplog.text


def test_the_signature_loops_are_cached_where_the_checkout_is_writable() -> None:
    loops: list[Any] = [kernels.fnv_of_runs, kernels.min_hashes]  # numba dispatchers, typed as the functions
    for loop in loops:
        assert isinstance(loop._cache, caching.FunctionCache)
