"""Beam coders for the models and records that cross the pipeline's shuffles.

Beam's default coder pickles any class it does not know, and a pickled pydantic model is
a dict of field names to values, each nested model again with its names, its field set
and its private state: the FnApiRunner encodes and decodes every grouped element twice,
so the dedup stage's articles paid that several times each. ``CompactCoder`` lays one
class out as a tuple of its field values in declaration order (nested models and NumPy
arrays as tuples of their own) and pickles that: no names, no per-object reduce. A
decoded element is the same object pickle would give back: the same field values and
types, the same ``model_fields_set``, writable arrays.

An element with a field whose value is not of the declared kind (a subclass, a naive
time, a value of another type) travels pickled whole, so the coder is never wrong, only
sometimes no faster.
``register`` makes it the coder of a class for PCollections typed with it
(``with_output_types``); it must never hold state beyond the per-class layouts it caches.
"""

from __future__ import annotations

import dataclasses
import operator
import pickle
import types
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import apache_beam as beam
import numpy as np
from pydantic import BaseModel

_PROTOCOL = pickle.HIGHEST_PROTOCOL
# The first byte says how the rest is laid out.
_LAID_OUT = b"t"
_WHOLE = b"p"
_set_attribute = object.__setattr__


class _Mismatch(Exception):
    """A value is not of its field's declared kind: the object travels pickled whole."""


def _unannotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _declared(annotation: Any) -> tuple[Any, bool]:
    """The type ``annotation`` declares, and whether it may be None (``X | None``)."""
    annotation = _unannotated(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [_unannotated(a) for a in typing.get_args(annotation)]
        others = [a for a in members if a is not type(None)]
        if len(others) == 1 and len(members) == 2:
            return others[0], True
    return annotation, False


def _subclass(declared: Any, kind: type) -> type | None:
    if isinstance(declared, type) and issubclass(declared, kind):
        return declared
    origin = typing.get_origin(declared)
    if isinstance(origin, type) and issubclass(origin, kind):
        return origin
    return None


class _Layout:
    """The tuple layout of one class: a pydantic model or a dataclass."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        if issubclass(cls, BaseModel):
            self.model = True
            hints = {name: info.annotation for name, info in cls.model_fields.items()}
            # Private attributes or extra fields live outside the field values: pickle those whole.
            self.whole = bool(cls.__private_attributes__) or cls.model_config.get("extra") == "allow"
        elif dataclasses.is_dataclass(cls):
            self.model = False
            resolved = typing.get_type_hints(cls)
            hints = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
            self.whole = hasattr(cls, "__slots__")
        else:
            raise TypeError(f"CompactCoder lays out pydantic models and dataclasses, not {cls.__name__}")
        self.names = tuple(hints)
        converters = [_converters(annotation) for annotation in hints.values()]
        # Only the fields that need converting are visited one by one; the rest move in bulk.
        self._to = tuple((i, to) for i, (to, _) in enumerate(converters) if to is not None)
        self._from = tuple((name, back) for name, (_, back) in zip(self.names, converters, strict=True) if back)
        self._values = operator.itemgetter(*self.names)
        self._bits = {name: 1 << index for index, name in enumerate(self.names)}
        self._masks: dict[frozenset[str], int] = {}
        self._fields_sets: dict[int, tuple[str, ...]] = {}

    def to_plain(self, value: Any) -> tuple[Any, ...]:
        """``value`` as a tuple of field values, a model's ending with its fields-set mask."""
        if type(value) is not self.cls or self.whole:
            raise _Mismatch
        state = value.__dict__
        if len(state) != len(self.names):
            raise _Mismatch
        plain = list(self._values(state))
        for index, to in self._to:
            plain[index] = to(plain[index])
        if self.model:
            plain.append(self._mask(value.__pydantic_fields_set__))  # type: ignore[attr-defined]
        return tuple(plain)

    def from_plain(self, plain: tuple[Any, ...]) -> Any:
        state = dict(zip(self.names, plain, strict=False))
        for name, back in self._from:
            state[name] = back(state[name])
        value: Any = object.__new__(self.cls)
        if self.model:
            # What BaseModel.__setstate__ restores from a pickle, in the same order.
            _set_attribute(value, "__pydantic_fields_set__", set(self._fields_set(plain[-1])))
            _set_attribute(value, "__pydantic_extra__", None)
            _set_attribute(value, "__pydantic_private__", None)
            _set_attribute(value, "__dict__", state)
        else:
            value.__dict__.update(state)  # what unpickling a dataclass does
        return value

    def _mask(self, fields_set: set[str]) -> int:
        key = frozenset(fields_set)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = sum(self._bits[name] for name in key)
        return mask

    def _fields_set(self, mask: int) -> tuple[str, ...]:
        names = self._fields_sets.get(mask)
        if names is None:
            names = self._fields_sets[mask] = tuple(n for n in self.names if self._bits[n] & mask)
        return names


_LAYOUTS: dict[type, _Layout] = {}


def _layout(cls: type) -> _Layout:
    # A cache of what each class's declaration says; it never changes once built.
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _Layout(cls)
    return layout


Convert = Callable[[Any], Any]


def _converters(annotation: Any) -> tuple[Convert | None, Convert | None]:
    """To and from the plain form of one field's value; (None, None): as it is."""
    declared, optional = _declared(annotation)
    to: Convert | None = None
    back: Convert | None = None
    if (model := _subclass(declared, BaseModel)) is not None or (
        isinstance(declared, type) and dataclasses.is_dataclass(declared) and (model := declared)
    ):
        nested = _layout(model)
        to, back = nested.to_plain, nested.from_plain
    elif (listed := _list_member(declared)) is not None:
        member = _layout(listed)
        to, back = _each(member.to_plain), _each(member.from_plain)
    elif _subclass(declared, np.ndarray) is not None:
        to, back = _array_to_plain, _array_from_plain
    elif _subclass(declared, datetime) is not None:
        to, back = _utc_to_plain, _utc_from_plain
    elif (enum := _subclass(declared, Enum)) is not None:
        to, back = _member_to_plain(enum), _member_from_plain(enum)
    if to is None or back is None or not optional:
        return to, back
    return _or_none(to), _or_none(back)


def _list_member(declared: Any) -> type | None:
    """The model class of a ``list[Model]``; else None."""
    if typing.get_origin(declared) is not list:
        return None
    (member,) = typing.get_args(declared) or (None,)
    return _subclass(_declared(member)[0], BaseModel)


def _or_none(convert: Convert) -> Convert:
    def maybe(value: Any) -> Any:
        return None if value is None else convert(value)

    return maybe


def _each(convert: Convert) -> Convert:
    def each(values: Any) -> Any:
        if type(values) is not list:
            raise _Mismatch
        return [convert(v) for v in values]

    return each


def _array_to_plain(array: Any) -> Any:
    if type(array) is not np.ndarray:
        raise _Mismatch
    return (array.dtype.str, array.shape, array.tobytes())


def _array_from_plain(plain: Any) -> Any:
    dtype, shape, data = plain
    # A copy: frombuffer alone gives a read-only view, and the array pickle gives back is writable.
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _utc_to_plain(moment: Any) -> Any:
    # A UTC time as whole microseconds since the epoch: exact, and a fraction of a pickled
    # datetime's cost (its timezone pickles through two reduce calls of its own).
    if type(moment) is not datetime or moment.tzinfo is not UTC or moment.fold:
        raise _Mismatch
    return (moment - _EPOCH) // _MICROSECOND


def _utc_from_plain(microseconds: Any) -> Any:
    return _EPOCH + timedelta(0, 0, microseconds)


def _member_to_plain(enum: type[Enum]) -> Convert:
    def to(member: Any) -> Any:
        if type(member) is not enum:
            raise _Mismatch
        return member.value

    return to


def _member_from_plain(enum: type[Enum]) -> Convert:
    members = enum._value2member_map_

    def back(value: Any) -> Any:
        return members[value]

    return back


class CompactCoder(beam.coders.Coder):  # type: ignore[misc]
    """Encodes instances of one pydantic model or dataclass as a pickled tuple of their field values."""

    def __init__(self, cls: type) -> None:
        self._cls = cls

    def encode(self, value: Any) -> bytes:
        try:
            plain = _layout(self._cls).to_plain(value)
        except _Mismatch:
            return _WHOLE + pickle.dumps(value, _PROTOCOL)
        return _LAID_OUT + pickle.dumps(plain, _PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        # Our own bytes, written by encode above within one pipeline: never outside input.
        plain = pickle.loads(memoryview(encoded)[1:])  # noqa: S301
        return plain if encoded[0] == _WHOLE[0] else _layout(self._cls).from_plain(plain)

    def is_deterministic(self) -> bool:
        # Dict fields keep their insertion order: equal values may encode differently. Values only, never keys.
        return False

    def to_type_hint(self) -> type:
        return self._cls

    @classmethod
    def from_type_hint(cls, type_hint: type, registry: Any) -> CompactCoder:  # type: ignore[override]
        return cls(type_hint)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._cls is self._cls  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._cls))

    def __repr__(self) -> str:
        return f"CompactCoder[{self._cls.__name__}]"


def register(classes: Sequence[type]) -> None:
    """Make ``CompactCoder`` the coder of each class, for PCollections typed with it."""
    for cls in classes:
        _layout(cls)  # fails here, not in a worker, if the class cannot be laid out
        beam.coders.registry.register_coder(cls, CompactCoder)
