"""Enrichers: each one module behind the ``Enricher`` contract in ``base``, chosen by name.

``ENRICHERS`` is the one list of them: the settings' allowed names, the shell's wiring and
the tests that run over every enricher all read it. Importing this package imports no
enricher (their data loads are heavy); the classes are importable from here on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipeline.registry import Registered, Registry

if TYPE_CHECKING:
    from pipeline.enrichers.base import Enricher
    from pipeline.enrichers.countries import CountryEnricher
    from pipeline.enrichers.dateline import DatelineEnricher
    from pipeline.enrichers.entities import EntityEnricher
    from pipeline.enrichers.keywords import KeywordEnricher
    from pipeline.enrichers.language import LanguageEnricher
    from pipeline.enrichers.summary import SummaryEnricher
    from pipeline.enrichers.text_stats import TextStatsEnricher

# Arguments are named by the PipelineSettings field they are read from.
ENRICHERS: Registry[Enricher] = Registry(
    "enrichers",
    [
        Registered(
            "text_stats",
            "pipeline.enrichers.text_stats:TextStatsEnricher",
            {"words_per_minute": "words_per_minute"},
            "word count and reading time",
        ),
        Registered("language", "pipeline.enrichers.language:LanguageEnricher", {}, "detected language"),
        Registered(
            "entities",
            "pipeline.enrichers.entities:EntityEnricher",
            {"recogniser": "entity_recogniser"},
            "people, organisations and places named",
        ),
        Registered("keywords", "pipeline.enrichers.keywords:KeywordEnricher", {}, "key phrases"),
        Registered("summary", "pipeline.enrichers.summary:SummaryEnricher", {}, "extractive summary"),
        Registered("countries", "pipeline.enrichers.countries:CountryEnricher", {}, "countries mentioned"),
        Registered("dateline", "pipeline.enrichers.dateline:DatelineEnricher", {}, "the dateline's place"),
    ],
)

_CLASSES = {
    "Enricher": "pipeline.enrichers.base",
    "CountryEnricher": "pipeline.enrichers.countries",
    "DatelineEnricher": "pipeline.enrichers.dateline",
    "EntityEnricher": "pipeline.enrichers.entities",
    "KeywordEnricher": "pipeline.enrichers.keywords",
    "LanguageEnricher": "pipeline.enrichers.language",
    "SummaryEnricher": "pipeline.enrichers.summary",
    "TextStatsEnricher": "pipeline.enrichers.text_stats",
}


def __getattr__(name: str) -> Any:
    # PEP 562: `from pipeline.enrichers import EntityEnricher` imports that one module then.
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENRICHERS",
    "CountryEnricher",
    "DatelineEnricher",
    "Enricher",
    "EntityEnricher",
    "KeywordEnricher",
    "LanguageEnricher",
    "SummaryEnricher",
    "TextStatsEnricher",
]
