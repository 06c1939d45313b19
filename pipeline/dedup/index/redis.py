"""The shared dedup index: a Redis server that every worker of the pipeline talks to.

Transactions are optimistic: the keys a decision reads are WATCHed, its writes go in one
MULTI/EXEC, and if another worker touched a watched key in between, Redis refuses the EXEC
and the decision is re-made on fresh reads. So two workers deciding about the same pair
at the same moment never both keep or both drop it. Entries carry a Redis TTL equal to
the horizon, so the server forgets them on its own. This module must never hold decision
logic or keep entries in process memory between transactions (other workers write too).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import redis

from pipeline.dedup.index import Entry, IndexView, StagedView

T = TypeVar("T")
_MAX_ATTEMPTS = 50


class TransactionContended(RuntimeError):
    """Other workers kept changing what this decision read; the bundle fails and Beam retries it."""


class RedisDedupIndex:
    def __init__(self, url: str, *, namespace: str, horizon_s: float) -> None:
        self._client = redis.Redis.from_url(url)
        self._prefix = f"{namespace}:"
        self._ttl_ms = int(horizon_s * 1000)

    def transact(self, decide: Callable[[IndexView], T]) -> T:
        for _ in range(_MAX_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                try:

                    def read(keys: list[str], pipe: redis.client.Pipeline = pipe) -> dict[str, Entry]:
                        names = [self._prefix + k for k in keys]
                        pipe.watch(*names)  # before the read, so a change after it aborts the EXEC
                        values = pipe.mget(names)
                        return {k: json.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

                    view = StagedView(read)
                    result = decide(view)
                    pipe.multi()
                    for key, entry in view.staged.items():
                        pipe.set(self._prefix + key, json.dumps(entry, separators=(",", ":")), px=self._ttl_ms)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise TransactionContended(
            f"dedup decision re-made {_MAX_ATTEMPTS} times while other workers changed the same keys"
        )

    def expire(self) -> int:
        return 0  # Redis drops entries by their TTL

    def entry_count(self) -> int:
        return sum(1 for _ in self._client.scan_iter(match=self._prefix + "*", count=1000))

    def close(self) -> None:
        self._client.close()
