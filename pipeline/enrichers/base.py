"""The enricher contract, and how an enricher holds a heavy resource.

An enricher reads a ``CleanedArticle`` and returns values for fields of
``EnrichedArticle``. It may raise on a bad article: the Enrich stage records the failure
on that article and lets it through. Heavy resources (models, gazetteers) are
``worker_resource`` attributes: loaded in ``setup``, which runs once per worker (or on
first use, if nobody called it), never per element, never at import time, and never
pickled with the enricher.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from schemas import CleanedArticle

T = TypeVar("T")


class worker_resource(functools.cached_property[T]):  # lower case: a decorator, like cached_property
    """Decorates the method that loads an enricher's heavy resource (a model, a gazetteer).

    The method runs on first access, once per enricher object, and its result stays in the
    object; ``Enricher.setup`` loads them all up front and pickling leaves them behind.
    Beam ships enrichers to the workers pickled, and a model is large (spaCy's alone some
    15 MB) and slow to pickle: each worker loads its own copy instead.
    """


class Enricher(ABC):
    name: ClassVar[str]

    def setup(self) -> None:
        """Load what ``enrich`` needs; called once per worker before the first article."""
        for name in _resource_names(type(self)):
            getattr(self, name)

    @abstractmethod
    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        """Field name -> value for ``EnrichedArticle``."""

    def __getstate__(self) -> dict[str, Any]:
        resources = _resource_names(type(self))
        return {name: value for name, value in self.__dict__.items() if name not in resources}


def _resource_names(cls: type[Enricher]) -> set[str]:
    return {name for klass in cls.__mro__ for name, value in vars(klass).items() if isinstance(value, worker_resource)}
