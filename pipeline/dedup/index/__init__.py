"""Dedup memory that outlives a batch: small keyed entries read and written in atomic transactions.

Beam state does not survive a micro-batch (or a redeploy on a streaming runner), so the
pipeline remembers here who owns each identity key (an article id, a content fingerprint,
an LSH band) and the signatures of the originals it kept. The contract is one operation,
``transact(decide)``: ``decide`` reads entries through a view, stages writes, and returns
a result; the backend makes the whole of it atomic against every other worker, re-running
``decide`` on a fresh view if another worker changed what it read. ``decide`` must
therefore be a pure function of what it reads. ``read(look)`` is the read-only
counterpart (``newswire dedup explain``): no write lock, and a view that refuses writes.
Every entry expires after the horizon the index was opened with, so memory stops growing
once the horizon is reached.

This module never decides what is a duplicate (``pipeline.dedup.decide`` does) and never
reads settings; backends are chosen by the plain ``IndexLocation`` the shell builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pydantic_core

T = TypeVar("T")
Entry = dict[str, Any]


def encode_entry(entry: Entry) -> str:
    """Compact JSON; pydantic-core's encoder, several times faster than the json module's on these small dicts."""
    return pydantic_core.to_json(entry).decode("utf-8")


def decode_entry(text: str | bytes) -> Entry:
    entry: Entry = pydantic_core.from_json(text)
    return entry


class IndexView(Protocol):
    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        """The live entries among ``keys`` (absent and expired keys are left out)."""

    def put(self, key: str, entry: Entry) -> None:
        """Stage a write; later reads in the same transaction see it."""


class DedupIndex(Protocol):
    def transact(self, decide: Callable[[IndexView], T]) -> T:
        """Run ``decide`` atomically: its writes land together, and only if what it read still holds."""

    def read(self, look: Callable[[IndexView], T]) -> T:
        """Run ``look`` over what is committed, taking no write lock; its view refuses ``put``."""

    def expire(self) -> int:
        """Forget entries past the horizon; returns how many were dropped (0 where the backend expires by itself)."""

    def entry_count(self) -> int: ...

    def stats(self) -> IndexStats:
        """How many entries and bytes the index holds, by kind of entry (``entries.kind_of``)."""

    def live_entries(self, kind: str) -> Iterator[tuple[str, Entry]]:
        """Every live entry of one kind (``id``, ``sig``, ``fp``, a band scheme such as ``near2b``); for reports."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class IndexLocation:
    """Where the index lives, as plain picklable values: a SQLite file, or a Redis server shared by workers."""

    sqlite_path: Path | None = None
    redis_url: str | None = None
    namespace: str = "newswire:dedup"
    horizon_s: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if (self.sqlite_path is None) == (self.redis_url is None):
            raise ValueError("a dedup index needs exactly one of sqlite_path or redis_url")
        if self.horizon_s <= 0:
            raise ValueError(f"dedup horizon must be positive, got {self.horizon_s} s")

    def __repr__(self) -> str:
        # Redis URLs may carry a password; never let it reach a log or a pipeline graph dump.
        where = str(self.sqlite_path) if self.sqlite_path else "redis://***"
        return f"IndexLocation({where}, horizon_s={self.horizon_s})"

    def open(self) -> DedupIndex:
        if self.redis_url is not None:
            from pipeline.dedup.index.redis import RedisDedupIndex  # the redis client is only needed here

            return RedisDedupIndex(self.redis_url, namespace=self.namespace, horizon_s=self.horizon_s)
        from pipeline.dedup.index.sqlite import SqliteDedupIndex

        assert self.sqlite_path is not None
        return SqliteDedupIndex(self.sqlite_path, horizon_s=self.horizon_s)


@dataclass(frozen=True)
class KindStats:
    entries: int
    bytes: int  # keys and values as stored


@dataclass(frozen=True)
class IndexStats:
    """What an index holds: live entries (and those expired but not yet deleted), by kind of entry."""

    entries: int  # stored, including expired entries not yet deleted
    live_entries: int
    live_bytes: int  # keys and values of the live entries
    storage_bytes: int  # the SQLite file and its WAL, or the Redis server's used memory
    by_kind: dict[str, KindStats] = field(default_factory=dict)


class ReadOnlyView:
    """Reads through to a backend; a write is a bug in the caller (reads must never change the index)."""

    def __init__(self, read: Callable[[list[str]], Mapping[str, Entry]]) -> None:
        self._read = read

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        return dict(self._read(list(dict.fromkeys(keys))))

    def put(self, key: str, entry: Entry) -> None:
        raise TypeError(f"read-only dedup index view: refusing to write {key!r}; use transact() to decide")


class StagedView:
    """Reads through to a backend, with this transaction's own writes laid over it.

    What it read is kept for the rest of the transaction: the backend guarantees nothing
    read changes before the commit (a lock, or a watch that re-runs the decision).
    """

    def __init__(self, read: Callable[[list[str]], Mapping[str, Entry]]) -> None:
        self._read = read
        self._read_before: dict[str, Entry | None] = {}
        self.staged: dict[str, Entry] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        # Called several times per article decided, nearly always for keys already read: one
        # pass over them, and one more only when some must come from the backend first.
        wanted = keys if isinstance(keys, list) else list(keys)
        result = self._known(wanted)
        if result is None:
            missing = [k for k in dict.fromkeys(wanted) if k not in self.staged and k not in self._read_before]
            found = self._read(missing)
            self._read_before.update((k, found.get(k)) for k in missing)
            result = self._known(wanted)
            assert result is not None
        return result

    def _known(self, keys: list[str]) -> dict[str, Entry] | None:
        """The live entries among ``keys`` in their order, or None if any was never read."""
        staged, before = self.staged, self._read_before
        result: dict[str, Entry] = {}
        for key in keys:
            if key in staged:
                result[key] = staged[key]
            elif key in before:
                if (entry := before[key]) is not None:
                    result[key] = entry
            else:
                return None
        return result

    def put(self, key: str, entry: Entry) -> None:
        self.staged[key] = entry

    def encoded(self) -> dict[str, str]:
        """The staged writes as stored text, by key; one entry object under many keys (an
        article's new bands) is encoded once."""
        texts: dict[int, str] = {}
        out: dict[str, str] = {}
        for key, entry in self.staged.items():
            text = texts.get(id(entry))
            if text is None:
                text = texts[id(entry)] = encode_entry(entry)
            out[key] = text
        return out
