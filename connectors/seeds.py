"""The seed replay connector: article text files in ``seeds/`` replayed as cleaned articles.

A seed file is named ``NNN_<id>.txt`` and holds the title on its first line, a blank
line, then paragraphs separated by blank lines. Seeds go through exactly the same path as
live articles (raw topic, pipeline, sinks), which is what makes them a test source.
A malformed file becomes a ``Rejected`` item naming the file; it never stops the replay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from connectors.base import Rejected, Source, SourceItem
from connectors.cleaning.repairs import strip_glued_title
from schemas import CleanedArticle, SourceKind, SourceRef, article_id_for_seed
from schemas.timestamps import utc_now

SEED_FILE_NAME = re.compile(r"^(?P<order>\d+)_(?P<seed_id>[0-9A-Za-z_-]{1,64})\.txt$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
# Text files have few control characters; more than this share means binary data.
_MAX_CONTROL_SHARE = 0.01


class SeedSource(Source):
    """Every seed file under a directory (sorted by name), or one seed file."""

    def __init__(self, path: Path, *, max_file_bytes: int) -> None:
        self.path = path
        self.name = path.name
        self._max_file_bytes = max_file_bytes

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise FileNotFoundError(f"seed path {self.path} is neither a file nor a directory")
        return sorted(p for p in self.path.iterdir() if p.is_file() and not p.name.startswith("."))

    def size_hint(self) -> int | None:
        return len(self.files())

    def items(self) -> Iterator[SourceItem]:
        for path in self.files():
            yield read_seed_file(path, max_file_bytes=self._max_file_bytes)


def read_seed_file(path: Path, *, max_file_bytes: int, fetched_at: datetime | None = None) -> SourceItem:
    def reject(error_type: str, reason: str, original: bytes | None = None) -> Rejected:
        return Rejected(
            stage="replay",
            error_type=error_type,
            reason=f"seed file {path.name}: {reason}",
            source_name=path.name,
            original=original,
        )

    name = SEED_FILE_NAME.match(path.name)
    if not name:
        return reject("bad_name", "name must look like NNN_<id>.txt (id: letters, digits, '-', '_')")
    size = path.stat().st_size
    if size > max_file_bytes:
        return reject(
            "too_large",
            f"{size} bytes is over the largest article, limits.max_article_bytes={max_file_bytes}; raise that limit "
            "(every topic and client limit follows it) or split the file",
        )
    data = path.read_bytes()
    # Binary first: an image or archive is rarely valid UTF-8, and "bad byte at offset N"
    # would send the reader looking for an encoding problem that is not there.
    if _looks_binary(data):
        return reject("binary", "looks binary (NUL or many control bytes), not a text article", data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return reject("not_utf8", f"not UTF-8 text (bad byte at offset {error.start})", data)
    title, body = split_seed_text(text)
    if not title:
        return reject("no_title", "the first line (the title) is empty", data)
    if not body:
        return reject("no_body", "no paragraphs after the title", data)
    try:
        return CleanedArticle(
            article_id=article_id_for_seed(name["seed_id"]),
            title=title,
            body=body,
            fetched_at=fetched_at or utc_now(),
            source=SourceRef(kind=SourceKind.SEED, name=path.name),
        )
    except ValidationError as error:
        return reject("invalid", str(error), data)


def split_seed_text(text: str) -> tuple[str, str]:
    """Title and body of a seed's text, with a title glued onto the first paragraph removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    first_line, _, rest = text.partition("\n")
    title = " ".join(first_line.split())
    paragraphs = [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(rest)]
    paragraphs = [p for p in paragraphs if p]
    if title and paragraphs:
        paragraphs[0] = strip_glued_title(title, paragraphs[0])
        paragraphs = [p for p in paragraphs if p]
    return title, "\n\n".join(paragraphs)


def _looks_binary(data: bytes) -> bool:
    """Judged on the bytes, before decoding: ASCII control bytes are the same in every
    encoding a seed could be written in, so this needs no guess at the encoding."""
    if b"\x00" in data:
        return True
    control = sum(1 for b in data if b < 32 and b not in b"\n\r\t\f")
    return control > max(1, len(data) * _MAX_CONTROL_SHARE)
