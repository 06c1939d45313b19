"""Score newswire's ``extract_article`` against trafilatura on public reference sets.

Usage: ``python -m bench.extraction.run [--limit N] [--data PATH] [--systems NAME ...]``

Prints one table: one row per extractor, run in the same process on the same pages, with
body precision/recall/F1 (Zyte benchmark), exact-day date accuracy (MediaCloud 2020 plus
the dated Readability pages), exact and containment title matches (Readability pages) and
pages per second over every distinct page the row processed. The harness must never tune
anything: it only measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trafilatura
from trafilatura.settings import Document

from bench.extraction.datasets import BodyCase, DateCase, TitleCase, body_cases, date_cases, title_cases
from bench.extraction.scoring import body_score, macro_body_scores, same_day, title_contains, title_exact
from connectors.cleaning.extract import extract_article

_REPO = Path(__file__).resolve().parents[2]
_DEFAULT_DATA = _REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Prediction:
    body: str
    day: dt.date | None
    title: str | None


Extractor = Callable[[str | bytes, str | None], Prediction]


def newswire(html: str | bytes, url: str | None) -> Prediction:
    page = extract_article(html, url)
    return Prediction(page.text, page.published_on, page.title)


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
    "newswire extract_article": newswire,
    "trafilatura default": trafilatura_with(),
    "trafilatura include_comments=False": trafilatura_with(include_comments=False),
    "trafilatura favor_precision": trafilatura_with(favor_precision=True),
    "trafilatura favor_recall": trafilatura_with(favor_recall=True),
}


@dataclass(frozen=True)
class Row:
    name: str
    precision: float
    recall: float
    f1: float
    date_accuracy: float
    title_exact: float
    title_contains: float
    pages_per_second: float


@dataclass(frozen=True)
class Cases:
    bodies: list[BodyCase]
    dates: list[DateCase]
    titles: list[TitleCase]

    def distinct_pages(self) -> dict[str, tuple[str | bytes, str | None]]:
        """Each page once, so a page in two sets is timed (and extracted) once per row."""
        pages: dict[str, tuple[str | bytes, str | None]] = {}
        for body in self.bodies:
            pages[f"body/{body.name}"] = (body.html, body.url)
        for date in self.dates:
            pages[_page_key(date.name)] = (date.html, date.url)
        for title in self.titles:
            pages[_page_key(f"readability/{title.name}")] = (title.html, None)
        return pages


def _page_key(name: str) -> str:
    return name if name.startswith("readability/") else f"mediacloud/{name}"


def score(name: str, extractor: Extractor, cases: Cases) -> Row:
    predictions: dict[str, Prediction] = {}
    started = time.perf_counter()
    pages = cases.distinct_pages()
    for key, (html, url) in pages.items():
        predictions[key] = extractor(html, url)
    elapsed = time.perf_counter() - started
    bodies = [body_score(case.body, predictions[f"body/{case.name}"].body) for case in cases.bodies]
    precision, recall, f1 = macro_body_scores(bodies)
    days = [same_day(case.day, predictions[_page_key(case.name)].day) for case in cases.dates]
    titles = [predictions[f"readability/{case.name}"].title for case in cases.titles]
    exact = [title_exact(case.title, title) for case, title in zip(cases.titles, titles, strict=True)]
    contains = [title_contains(case.title, title) for case, title in zip(cases.titles, titles, strict=True)]
    return Row(
        name,
        precision,
        recall,
        f1,
        _share(days),
        _share(exact),
        _share(contains),
        len(pages) / elapsed if elapsed else 0.0,
    )


def _share(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0


def render(rows: Sequence[Row], cases: Cases) -> str:
    header = ("extractor", "body P", "body R", "body F1", "date acc", "title exact", "title contains", "pages/s")
    width = max(len(header[0]), *(len(row.name) for row in rows))
    lines = [f"{header[0]:<{width}}  " + "  ".join(f"{label:>14}" for label in header[1:])]
    for row in rows:
        figures = (row.precision, row.recall, row.f1, row.date_accuracy, row.title_exact, row.title_contains)
        cells = [f"{figure:>14.3f}" for figure in figures] + [f"{row.pages_per_second:>14.1f}"]
        lines.append(f"{row.name:<{width}}  " + "  ".join(cells))
    lines.append(
        f"({len(cases.bodies)} body pages, {len(cases.dates)} dated pages, {len(cases.titles)} titled pages, "
        f"{len(cases.distinct_pages())} distinct pages timed per row)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=_DEFAULT_DATA, help="folder holding the benchmark folders")
    parser.add_argument("--limit", type=int, default=None, help="at most N pages from each reference set")
    parser.add_argument("--systems", nargs="*", choices=sorted(SYSTEMS), default=list(SYSTEMS))
    args = parser.parse_args(argv)
    cases = Cases(
        list(body_cases(args.data, args.limit)),
        list(date_cases(args.data, args.limit)),
        list(title_cases(args.data, args.limit)),
    )
    rows = [score(name, SYSTEMS[name], cases) for name in args.systems]
    print(render(rows, cases))


if __name__ == "__main__":
    main()
