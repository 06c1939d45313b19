"""Enrichers: each one module behind the ``Enricher`` contract in ``base``, chosen by name."""

from pipeline.enrichers.base import Enricher
from pipeline.enrichers.countries import CountryEnricher
from pipeline.enrichers.dateline import DatelineEnricher
from pipeline.enrichers.entities import EntityEnricher
from pipeline.enrichers.keywords import KeywordEnricher
from pipeline.enrichers.language import LanguageEnricher
from pipeline.enrichers.summary import SummaryEnricher
from pipeline.enrichers.text_stats import TextStatsEnricher

AVAILABLE: dict[str, type[Enricher]] = {
    TextStatsEnricher.name: TextStatsEnricher,
    LanguageEnricher.name: LanguageEnricher,
    EntityEnricher.name: EntityEnricher,
    KeywordEnricher.name: KeywordEnricher,
    SummaryEnricher.name: SummaryEnricher,
    CountryEnricher.name: CountryEnricher,
    DatelineEnricher.name: DatelineEnricher,
}

__all__ = [
    "AVAILABLE",
    "CountryEnricher",
    "DatelineEnricher",
    "Enricher",
    "EntityEnricher",
    "KeywordEnricher",
    "LanguageEnricher",
    "SummaryEnricher",
    "TextStatsEnricher",
]
