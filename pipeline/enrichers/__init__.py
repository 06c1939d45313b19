"""Enrichers: each one module behind the ``Enricher`` contract in ``base``, chosen by name."""

from pipeline.enrichers.base import Enricher
from pipeline.enrichers.language import LanguageEnricher
from pipeline.enrichers.text_stats import TextStatsEnricher

AVAILABLE: dict[str, type[Enricher]] = {
    TextStatsEnricher.name: TextStatsEnricher,
    LanguageEnricher.name: LanguageEnricher,
}

__all__ = ["AVAILABLE", "Enricher", "LanguageEnricher", "TextStatsEnricher"]
