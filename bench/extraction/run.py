"""Score newswire's ``extract_article`` against trafilatura on public reference sets.

Usage: ``python -m bench.extraction.run [--limit N] [--data PATH] [--systems NAME ...] [--no-ablation]``

Every body set found under the data folder (see ``bench.extraction.datasets``; a missing
set is skipped, not an error) gets one table: one row per extractor with body
precision/recall/F1 and pages per second on that set's pages. A closing table gives each
extractor's mean body F1 over the sets, exact-day date accuracy (MediaCloud 2020 plus the
dated Readability pages), exact and containment title matches (Readability pages), pages
per second over every distinct page and that speed as a multiple of trafilatura default's.
Then the count of pages where trafilatura default scores at least 0.8 and newswire returns
an empty body, and an ablation: each body rule of ``extract_article`` turned off in turn,
with the F1 change on each set.

All extractors run in one process on the same pages, interleaved page by page, so that
load from other work on the machine falls on every row alike. The harness must never tune
anything: it only measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trafilatura
from trafilatura.settings import Document

from bench.extraction.datasets import (
    BodyCase,
    DateCase,
    TitleCase,
    body_cases,
    body_sets,
    date_cases,
    title_cases,
)
from bench.extraction.scoring import (
    BodyScore,
    body_score,
    macro_body_scores,
    page_f1,
    same_day,
    title_contains,
    title_exact,
)
from connectors.cleaning.candidates import SIGNS
from connectors.cleaning.extract import ALL_RULES, BodyRules, extract_article

_REPO = Path(__file__).resolve().parents[2]
# ``../shared/data`` beside the main checkout; a worktree sits one level deeper, so the
# nearest folder of that name above the repository is taken.
_DEFAULT_DATA = next(
    (folder / "shared" / "data" for folder in _REPO.parents if (folder / "shared" / "data").is_dir()),
    _REPO.parent / "shared" / "data",
)
NEWSWIRE = "newswire extract_article"
REFERENCE = "trafilatura default"
# A page trafilatura default reads this well has an article newswire must not lose.
_GOOD_PAGE_F1 = 0.8


@dataclass(frozen=True)
class Prediction:
    body: str
    day: dt.date | None
    title: str | None


Extractor = Callable[[str | bytes, str | None], Prediction]
# Each page by its key: its HTML and its URL (None when the set kept none).
Pages = dict[str, tuple[str | bytes, str | None]]


def newswire_with(rules: BodyRules = ALL_RULES) -> Extractor:
    def run(html: str | bytes, url: str | None) -> Prediction:
        page = extract_article(html, url, rules)
        return Prediction(page.text, page.published_on, page.title)

    return run


def trafilatura_with(**settings: Any) -> Extractor:
    """trafilatura alone; the body is what ``trafilatura.extract`` would print as txt."""

    def run(html: str | bytes, url: str | None) -> Prediction:
        document = trafilatura.bare_extraction(html, url=url, with_metadata=True, **settings)
        if not isinstance(document, Document):
            return Prediction("", None, None)
        # extract() appends the comments to the txt output when they are included.
        body = "\n".join(part for part in (document.text, document.comments) if part).strip()
        day = dt.date.fromisoformat(document.date[:10]) if document.date else None
        return Prediction(unicodedata.normalize("NFC", body), day, document.title)

    return run


SYSTEMS: dict[str, Extractor] = {
    NEWSWIRE: newswire_with(),
    REFERENCE: trafilatura_with(),
    "trafilatura include_comments=False": trafilatura_with(include_comments=False),
    "trafilatura favor_precision": trafilatura_with(favor_precision=True),
    "trafilatura favor_recall": trafilatura_with(favor_recall=True),
}

_ALL_ON = "(all rules on)"
# Each body rule of extract_article turned off alone; "comparison" shows the doubt check.
ABLATIONS: dict[str, BodyRules] = {
    **{f"without {repair.replace('_', ' ')}": ALL_RULES.without(repair) for repair in BodyRules.repairs()},
    "without doubt check (main reading only)": dataclasses.replace(ALL_RULES, comparison="never"),
    **{
        f"without doubt sign: {sign}": dataclasses.replace(ALL_RULES, doubt_signs=ALL_RULES.doubt_signs - {sign})
        for sign in SIGNS
    },
    "compare on every page": dataclasses.replace(ALL_RULES, comparison="always"),
    "main reading by trafilatura fast": dataclasses.replace(ALL_RULES, main_mode="fast"),
    "fast main reading, no doubt check (before)": dataclasses.replace(ALL_RULES, main_mode="fast", comparison="never"),
}


@dataclass(frozen=True)
class Cases:
    bodies: dict[str, list[BodyCase]]
    dates: list[DateCase]
    titles: list[TitleCase]

    def distinct_pages(self) -> Pages:
        """Each page once, so a page in two sets is timed (and extracted) once per row."""
        pages = self.body_pages()
        for date in self.dates:
            pages[_page_key(date.name)] = (date.html, date.url)
        for title in self.titles:
            pages[_page_key(f"readability/{title.name}")] = (title.html, None)
        return pages

    def body_pages(self) -> Pages:
        return {
            _body_key(set_name, case.name): (case.html, case.url)
            for set_name, cases in self.bodies.items()
            for case in cases
        }


def _body_key(set_name: str, name: str) -> str:
    return f"{set_name}/{name}"


def _page_key(name: str) -> str:
    return name if name.startswith("readability/") else f"mediacloud/{name}"


@dataclass
class Run:
    """One extractor's predictions and the seconds each page took."""

    predictions: dict[str, Prediction] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    def pages_per_second(self, keys: Sequence[str]) -> float:
        elapsed = sum(self.seconds[key] for key in keys)
        return len(keys) / elapsed if elapsed else 0.0


def run_interleaved(extractors: dict[str, Extractor], pages: Pages) -> dict[str, Run]:
    runs = {name: Run() for name in extractors}
    # One untimed page first: models, stop lists and caches load once per process, and
    # that one-off cost is not what pages per second should measure.
    for html, url in list(pages.values())[:1]:
        for extractor in extractors.values():
            extractor(html, url)
    for key, (html, url) in pages.items():
        for name, extractor in extractors.items():
            started = time.perf_counter()
            runs[name].predictions[key] = extractor(html, url)
            runs[name].seconds[key] = time.perf_counter() - started
    return runs


def body_scores(run: Run, set_name: str, cases: Sequence[BodyCase]) -> list[BodyScore]:
    return [body_score(case.body, run.predictions[_body_key(set_name, case.name)].body) for case in cases]


def render_set(set_name: str, cases: Sequence[BodyCase], runs: dict[str, Run]) -> str:
    keys = [_body_key(set_name, case.name) for case in cases]
    lines = [f"## {set_name} ({len(cases)} pages)", _row("extractor", "body P", "body R", "body F1", "pages/s")]
    for name, run in runs.items():
        precision, recall, f1 = macro_body_scores(body_scores(run, set_name, cases))
        lines.append(_row(name, f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}", f"{run.pages_per_second(keys):.1f}"))
    return "\n".join(lines)


def render_mean(cases: Cases, runs: dict[str, Run]) -> str:
    keys = list(cases.distinct_pages())
    reference = runs[REFERENCE].pages_per_second(keys) if REFERENCE in runs else 0.0
    header = _row("extractor", "mean body F1", "date acc", "title exact", "title contains", "pages/s", "speed x ref")
    lines = [f"## mean over {len(cases.bodies)} body sets; metadata sets; speed over all distinct pages", header]
    for name, run in runs.items():
        f1s = [macro_body_scores(body_scores(run, set_name, bodies))[2] for set_name, bodies in cases.bodies.items()]
        days = [same_day(case.day, run.predictions[_page_key(case.name)].day) for case in cases.dates]
        titles = [run.predictions[f"readability/{case.name}"].title for case in cases.titles]
        exact = [title_exact(case.title, title) for case, title in zip(cases.titles, titles, strict=True)]
        contains = [title_contains(case.title, title) for case, title in zip(cases.titles, titles, strict=True)]
        speed = run.pages_per_second(keys)
        lines.append(
            _row(
                name,
                f"{statistics.fmean(f1s):.3f}" if f1s else "-",
                f"{_share(days):.3f}",
                f"{_share(exact):.3f}",
                f"{_share(contains):.3f}",
                f"{speed:.1f}",
                f"{speed / reference:.2f}" if reference else "-",
            )
        )
    lines.append(
        f"({sum(map(len, cases.bodies.values()))} body pages, {len(cases.dates)} dated pages, "
        f"{len(cases.titles)} titled pages, {len(keys)} distinct pages timed per row)"
    )
    return "\n".join(lines)


def render_lost_articles(cases: Cases, runs: dict[str, Run]) -> str:
    """Pages trafilatura default reads well (page F1 >= 0.8) where newswire's body is empty."""
    if NEWSWIRE not in runs or REFERENCE not in runs:
        return ""
    counts = []
    for set_name, bodies in cases.bodies.items():
        lost = 0
        for case in bodies:
            key = _body_key(set_name, case.name)
            reference = page_f1(body_score(case.body, runs[REFERENCE].predictions[key].body))
            if reference >= _GOOD_PAGE_F1 and not runs[NEWSWIRE].predictions[key].body.strip():
                lost += 1
        counts.append(f"{set_name}: {lost}")
    return f"## empty newswire body where {REFERENCE} scores >= {_GOOD_PAGE_F1}\n" + ", ".join(counts)


def render_ablation(cases: Cases) -> str:
    """Each body rule off in turn, all variants timed side by side on the body pages."""
    pages = cases.body_pages()
    set_names = list(cases.bodies)
    variants = run_interleaved(
        {name: newswire_with(rules) for name, rules in {_ALL_ON: ALL_RULES, **ABLATIONS}.items()}, pages
    )
    keys = list(pages)
    f1s = {
        variant: {name: macro_body_scores(body_scores(run, name, cases.bodies[name]))[2] for name in set_names}
        for variant, run in variants.items()
    }
    lines = [
        "## ablation: newswire body F1 with one rule off, and the change against all rules on",
        _row(
            "rule off",
            *(f"{name[:13]} F1" for name in set_names),
            *(f"{name[:12]} dF1" for name in set_names),
            "pages changed",
            "pages/s",
        ),
    ]
    for variant, run in variants.items():
        changes = (_change(f1s[variant][name], f1s[_ALL_ON][name], variant) for name in set_names)
        lines.append(
            _row(
                variant,
                *(f"{f1s[variant][name]:.3f}" for name in set_names),
                *changes,
                str(sum(run.predictions[key].body != variants[_ALL_ON].predictions[key].body for key in keys)),
                f"{run.pages_per_second(keys):.1f}",
            )
        )
    lines.append(
        "(a negative change means the rule helps that set, a positive one that the set is better without it; "
        "pages changed: bodies that differ from all rules on; pages/s over the body pages, variants timed side by side)"
    )
    return "\n".join(lines)


def _change(f1: float, all_on: float, variant: str) -> str:
    return "" if variant == _ALL_ON else f"{f1 - all_on:+.4f}"


def _row(name: str, *cells: str) -> str:
    return f"{name:<46}  " + "  ".join(f"{cell:>16}" for cell in cells)


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=_DEFAULT_DATA, help="folder holding the benchmark folders")
    parser.add_argument("--limit", type=int, default=None, help="at most N pages from each reference set")
    parser.add_argument("--systems", nargs="*", choices=sorted(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--no-ablation", action="store_true", help="skip the table of body rules turned off")
    args = parser.parse_args(argv)
    cases = Cases(
        {found.name: list(body_cases(found, args.limit)) for found in body_sets(args.data)},
        list(date_cases(args.data, args.limit)),
        list(title_cases(args.data, args.limit)),
    )
    if not cases.bodies:
        print(f"no body set found under {args.data} (a folder with ground-truth.json and html/)")
    runs = run_interleaved({name: SYSTEMS[name] for name in args.systems}, cases.distinct_pages())
    sections = [render_set(name, bodies, runs) for name, bodies in cases.bodies.items()]
    sections += [render_mean(cases, runs), render_lost_articles(cases, runs)]
    if not args.no_ablation and NEWSWIRE in runs and cases.bodies:
        sections.append(render_ablation(cases))
    print("\n\n".join(section for section in sections if section), flush=True)


if __name__ == "__main__":
    main()
