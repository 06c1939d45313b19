"""The sources configuration (``sources.yaml``): which feeds, sitemaps and pages to ingest.

Loading validates every entry and, on a bad file, raises ``SourcesFileError`` naming the
file, the line and the reason, so an operator can fix it before the service starts.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas import canonicalize_url

DEFAULT_SOURCES_FILE = Path(__file__).with_name("default_sources.yaml")


class SourceType(StrEnum):
    FEED = "feed"  # RSS 0.9x/1.0/2.0, Atom or JSON Feed; the format is sniffed
    SITEMAP = "sitemap"  # urlset, sitemap index or Google News sitemap
    PAGE = "page"  # one article page


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    type: SourceType
    url: str
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    tags: tuple[str, ...] = ()
    min_poll_interval_s: float = Field(300.0, ge=10)
    max_poll_interval_s: float = Field(3600.0, ge=10)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, url: str) -> str:
        canonicalize_url(url)  # raises ValueError with the reason for anything else
        return url

    @model_validator(mode="after")
    def _interval_bounds_in_order(self) -> SourceConfig:
        if self.min_poll_interval_s > self.max_poll_interval_s:
            raise ValueError("min_poll_interval_s must not exceed max_poll_interval_s")
        return self


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[SourceConfig, ...]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return sources


class SourcesFileError(ValueError):
    """The sources file cannot be used; the message names the file, line and reason."""


def load_sources(path: Path) -> tuple[SourceConfig, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SourcesFileError(f"{path}: cannot read the sources file: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "somewhere"
        raise SourcesFileError(f"{path}, {where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    try:
        return SourcesFile.model_validate(document).sources
    except ValidationError as error:
        problems = [
            f"{path}, line {_line_of(root, item['loc'])}: {'.'.join(map(str, item['loc'])) or 'file'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise SourcesFileError("invalid sources file:\n  " + "\n  ".join(problems)) from None


def _line_of(node: Any, location: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at ``location``, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in location:
        if isinstance(node, yaml.MappingNode):
            node = next((value for name, value in node.value if name.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
