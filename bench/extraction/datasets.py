"""Loading the public reference sets the extraction harness scores against.

Three sets live under the shared data folder (each has a README with its source and
license): the Zyte article-body benchmark, htmldate's MediaCloud 2020 publication days and
Readability.js's test pages (titles and publication times). This module only reads them;
it must never modify them or filter pages by how well any extractor does on them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BodyCase:
    """A page with a human-annotated article body."""

    name: str
    html: str
    url: str
    body: str


@dataclass(frozen=True)
class DateCase:
    """A page with the publication day it was annotated with."""

    name: str
    html: bytes
    url: str | None
    day: dt.date


@dataclass(frozen=True)
class TitleCase:
    """A page with the title curated by Readability.js's maintainers."""

    name: str
    html: bytes
    title: str


def body_cases(data: Path, limit: int | None = None) -> Iterator[BodyCase]:
    folder = data / "extraction-benchmark"
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    for name in sorted(truth)[:limit]:
        with gzip.open(folder / "html" / f"{name}.html.gz", "rt", encoding="utf8") as page:
            html = page.read()
        yield BodyCase(name, html, truth[name]["url"], truth[name]["articleBody"])


def date_cases(data: Path, limit: int | None = None) -> Iterator[DateCase]:
    """MediaCloud pages first, then the Readability pages that carry a publishedTime."""
    folder = data / "metadata-benchmark" / "htmldate-mediacloud-2020"
    annotations = json.loads((folder / "eval_mediacloud_2020.json").read_text(encoding="utf-8"))
    dated = [(url, entry) for url, entry in sorted(annotations.items()) if _is_day(entry["date"])]
    for url, entry in dated[:limit]:
        html = gzip.decompress((folder / "test_set" / f"{entry['file']}.gz").read_bytes())
        yield DateCase(entry["file"], html, url, dt.date.fromisoformat(entry["date"]))
    readability = [page for page in _readability_pages(data) if page[1].get("publishedTime")]
    for name, expected, html in readability[:limit]:
        published = dt.datetime.fromisoformat(str(expected["publishedTime"]).replace("Z", "+00:00"))
        yield DateCase(f"readability/{name}", html, None, published.date())


def title_cases(data: Path, limit: int | None = None) -> Iterator[TitleCase]:
    titled = [page for page in _readability_pages(data) if (page[1].get("title") or "").strip()]
    for name, expected, html in titled[:limit]:
        yield TitleCase(name, html, str(expected["title"]))


def _is_day(value: object) -> bool:
    # Five annotations are the bare JSON token NaN (unknown day); the README says to skip them.
    return isinstance(value, str) and not (isinstance(value, float) and math.isnan(value))


def _readability_pages(data: Path) -> list[tuple[str, dict[str, str | None], bytes]]:
    folder = data / "metadata-benchmark" / "readability-test-pages" / "test-pages"
    pages = []
    for page in sorted(folder.iterdir()):
        expected = json.loads((page / "expected-metadata.json").read_text(encoding="utf-8"))
        pages.append((page.name, expected, gzip.decompress((page / "source.html.gz").read_bytes())))
    return pages
