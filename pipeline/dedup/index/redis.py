"""The shared dedup index: a Redis server that every worker of the pipeline talks to.

Transactions are optimistic: the keys a decision reads are WATCHed, its writes go in one
MULTI/EXEC, and if another worker touched a watched key in between, Redis refuses the EXEC
and the decision is re-made on fresh reads. So two workers deciding about the same pair
at the same moment never both keep or both drop it. Entries carry a Redis TTL equal to
the horizon, so the server forgets them on its own. This module must never hold decision
logic or keep entries in process memory between transactions (other workers write too).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import redis

from pipeline.dedup.entries import BAND_LAYOUT_KEY, band_layout_marker, kind_of
from pipeline.dedup.index import (
    Entry,
    IndexStats,
    IndexView,
    KindStats,
    ReadOnlyView,
    StagedView,
    decode_entry,
    encode_entry,
)

T = TypeVar("T")
_MAX_ATTEMPTS = 50


class TransactionContended(RuntimeError):
    """Other workers kept changing what this decision read; the bundle fails and Beam retries it."""


class RedisDedupIndex:
    def __init__(self, url: str, *, namespace: str, horizon_s: float) -> None:
        self._client = redis.Redis.from_url(url)
        self._prefix = f"{namespace}:"
        self._ttl_ms = int(horizon_s * 1000)
        self._mark_band_layout()

    def _mark_band_layout(self) -> None:
        """Writes ``meta:band-layout`` once, for the first worker to use the namespace (``entries.BandLayoutEntry``)."""
        marker = self._prefix + BAND_LAYOUT_KEY
        if self._client.exists(marker):
            return
        # Entries carry the horizon as their TTL, so none written before now outlives now + horizon.
        held = next(iter(self._client.scan_iter(match=self._prefix + "*", count=1000)), None) is not None
        latest = time.time() + self._ttl_ms / 1000 if held else None
        self._client.set(marker, encode_entry(dict(band_layout_marker(latest))), nx=True)  # no TTL: never expires

    def transact(self, decide: Callable[[IndexView], T]) -> T:
        for _ in range(_MAX_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                try:

                    def read(keys: list[str], pipe: redis.client.Pipeline = pipe) -> dict[str, Entry]:
                        names = [self._prefix + k for k in keys]
                        pipe.watch(*names)  # before the read, so a change after it aborts the EXEC
                        values = pipe.mget(names)
                        return {k: decode_entry(v) for k, v in zip(keys, values, strict=True) if v is not None}

                    view = StagedView(read)
                    result = decide(view)
                    pipe.multi()
                    for key, text in view.encoded().items():
                        pipe.set(self._prefix + key, text, px=self._ttl_ms)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise TransactionContended(
            f"dedup decision re-made {_MAX_ATTEMPTS} times while other workers changed the same keys"
        )

    def read(self, look: Callable[[IndexView], T]) -> T:
        def read(keys: list[str]) -> dict[str, Entry]:
            values = self._client.mget([self._prefix + k for k in keys]) if keys else []
            return {k: decode_entry(v) for k, v in zip(keys, values, strict=True) if v is not None}

        return look(ReadOnlyView(read))

    def stats(self) -> IndexStats:
        entries, live_bytes, counts = 0, 0, dict[str, list[int]]()
        keys = self._client.scan_iter(match=self._prefix + "*", count=1000)
        while chunk := list(itertools.islice(keys, 1000)):
            pipe = self._client.pipeline(transaction=False)
            for key in chunk:
                pipe.strlen(key)
            for key, length in zip(chunk, pipe.execute(), strict=True):
                name = key.decode()[len(self._prefix) :]
                size = len(name.encode()) + int(length)
                entries, live_bytes = entries + 1, live_bytes + size
                kind = counts.setdefault(kind_of(name), [0, 0])
                kind[0], kind[1] = kind[0] + 1, kind[1] + size
        used = int(self._client.info("memory")["used_memory"])
        by_kind = {kind: KindStats(n, size) for kind, (n, size) in sorted(counts.items())}
        return IndexStats(entries, entries, live_bytes, used, by_kind)  # Redis holds no expired entries

    def live_entries(self, kind: str) -> Iterator[tuple[str, Entry]]:
        keys = self._client.scan_iter(match=f"{self._prefix}{kind}:*", count=1000)
        while chunk := list(itertools.islice(keys, 1000)):
            for key, value in zip(chunk, self._client.mget(chunk), strict=True):
                if value is not None:
                    yield key.decode()[len(self._prefix) :], decode_entry(value)

    def expire(self) -> int:
        return 0  # Redis drops entries by their TTL

    def entry_count(self) -> int:
        return sum(1 for _ in self._client.scan_iter(match=self._prefix + "*", count=1000))

    def close(self) -> None:
        self._client.close()
