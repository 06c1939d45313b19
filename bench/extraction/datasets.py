"""Loading the public reference sets the extraction harness scores against.

The sets live under the shared data folder, each with a README giving its source and
license. Body sets are found by their layout (a folder holding ``ground-truth.json`` and
``html/<id>.html.gz``): today the Zyte article-body benchmark and L3S-GN1; a set that is
absent is simply not found. Dates come from htmldate's MediaCloud 2020 pages and the dated
Readability.js test pages, titles from the Readability.js pages. This module only reads
them; it must never modify them or filter pages by how well any extractor does on them.
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
    url: str | None
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


@dataclass(frozen=True)
class BodySet:
    """A folder of pages with annotated bodies, named after the folder."""

    name: str
    folder: Path


def body_sets(data: Path) -> list[BodySet]:
    """Every body set under ``data``, by name; an empty list when there is none."""
    if not data.is_dir():
        return []
    return [
        BodySet(folder.name, folder)
        for folder in sorted(data.iterdir())
        if (folder / "ground-truth.json").is_file() and (folder / "html").is_dir()
    ]


def body_cases(body_set: BodySet, limit: int | None = None) -> Iterator[BodyCase]:
    truth = json.loads((body_set.folder / "ground-truth.json").read_text(encoding="utf-8"))
    for name in sorted(truth)[:limit]:
        with gzip.open(body_set.folder / "html" / f"{name}.html.gz", "rt", encoding="utf8") as page:
            html = page.read()
        yield BodyCase(name, html, truth[name].get("url"), truth[name]["articleBody"])


def date_cases(data: Path, limit: int | None = None) -> Iterator[DateCase]:
    """MediaCloud pages first, then the Readability pages that carry a publishedTime."""
    folder = data / "metadata-benchmark" / "htmldate-mediacloud-2020"
    annotated = folder / "eval_mediacloud_2020.json"
    annotations = json.loads(annotated.read_text(encoding="utf-8")) if annotated.is_file() else {}
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
    pages: list[tuple[str, dict[str, str | None], bytes]] = []
    if not folder.is_dir():
        return pages
    for page in sorted(folder.iterdir()):
        expected = json.loads((page / "expected-metadata.json").read_text(encoding="utf-8"))
        pages.append((page.name, expected, gzip.decompress((page / "source.html.gz").read_bytes())))
    return pages
