"""A registry of one kind of pipeline component (enrichers, sinks), chosen by name.

Each entry names its factory as ``"module:attribute"`` and says which settings field feeds
each of the factory's arguments. Listing the names imports no component, so the settings
can validate against them while they load (a sink module imports Beam and its driver);
building one imports its module then. The shell reads the named fields from its settings
and calls ``build``; the registry itself never sees a settings object.

It must never hold two entries of one name, nor an entry whose factory lives elsewhere
than under ``pipeline``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """One component: its name, where its factory is, and the settings its arguments come from."""

    name: str
    factory: str  # "pipeline.sinks.sqlite:SqliteSink"
    # factory argument -> the field of the kind's settings section it is read from
    settings: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def load(self) -> Callable[..., T]:
        module, _, attribute = self.factory.partition(":")
        loaded: Callable[..., T] = getattr(importlib.import_module(module), attribute)
        return loaded

    def build(self, arguments: Mapping[str, Any] | None = None) -> T:
        """The component, given values for (some of) the arguments its ``settings`` name."""
        unknown = set(arguments or {}) - set(self.settings)
        if unknown:
            raise TypeError(f"{self.name} takes no setting for {', '.join(sorted(unknown))}")
        return self.load()(**(arguments or {}))


class Registry(Generic[T]):
    def __init__(self, kind: str, entries: list[Registered[T]]) -> None:
        self.kind = kind
        self._entries: dict[str, Registered[T]] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ValueError(f"two {kind} are registered as {entry.name!r}")
            if not entry.factory.startswith("pipeline."):
                raise ValueError(f"{kind} {entry.name!r}: factory {entry.factory!r} is not under pipeline")
            self._entries[entry.name] = entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, name: str) -> Registered[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"no {self.kind} named {name!r}; there are: {', '.join(self._entries)}") from None

    def __iter__(self) -> Iterator[Registered[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, chosen: tuple[str, ...]) -> tuple[str, ...]:
        """``chosen`` if every name is registered (for settings validators), else a ValueError naming them all."""
        unknown = [name for name in chosen if name not in self._entries]
        if unknown:
            named = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown {self.kind} {named}; choose from: {', '.join(self._entries)}")
        return chosen
