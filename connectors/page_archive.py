"""Raw pages archived as WARC records, so they can be re-cleaned later without refetching.

One gzip-compressed WARC file at a time in the configured directory, rolled to a new file
when it passes its size limit. Writes are serialised by a lock so fetch threads can share
one archive. Archiving must never lose the article: a failed write is logged and counted,
and the page goes on to extraction.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

log = logging.getLogger(__name__)


class PageArchive:
    def __init__(self, directory: Path, *, max_file_bytes: int) -> None:
        if max_file_bytes < 1:
            raise ValueError("max_file_bytes must be positive")
        self.directory = directory
        self._max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._writer: WARCWriter | None = None
        self._sequence = 0
        self.failures = 0

    def archive(
        self, url: str, status: int, headers: Mapping[str, str], body: bytes, fetched_at: datetime | None = None
    ) -> None:
        try:
            with self._lock:
                writer = self._current_writer()
                http_headers = StatusAndHeaders(
                    f"{status} {'OK' if status == 200 else ''}".strip(),
                    [(k, v) for k, v in headers.items() if k.lower() not in ("content-encoding", "transfer-encoding")],
                    protocol="HTTP/1.1",
                )
                record = writer.create_warc_record(
                    url,
                    "response",
                    payload=BytesIO(body),
                    http_headers=http_headers,
                    warc_headers_dict={"WARC-Date": (fetched_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")},
                )
                writer.write_record(record)
                assert self._file is not None
                self._file.flush()
        except OSError as error:
            self.failures += 1
            log.error("page not archived", extra={"url": url, "error": str(error), "directory": str(self.directory)})

    def _current_writer(self) -> WARCWriter:
        if self._file is not None and self._file.tell() >= self._max_file_bytes:
            self._file.close()
            self._file = None
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            # The pid keeps files of concurrent fetch processes apart.
            path = self.directory / f"pages-{stamp}-{os.getpid()}-{self._sequence:05d}.warc.gz"
            self._file = open(path, "ab")  # noqa: SIM115 - kept open across calls, closed in close()/roll
            self._writer = WARCWriter(self._file, gzip=True)
        assert self._writer is not None
        return self._writer

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("pages-*.warc.gz"))

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
