import os
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from connectors.page_archive import PageArchive


def test_pages_are_archived_as_warc_and_rolled_by_size(tmp_path: Path) -> None:
    archive = PageArchive(tmp_path / "warc", max_file_bytes=2_000)
    # Incompressible bodies, so each record really takes space in the gzip file.
    pages = {f"https://news.example.org/{n}": b"<html><body>" + os.urandom(800).hex().encode() for n in range(5)}
    for url, body in pages.items():
        archive.archive(url, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}, body)
    archive.close()
    files = archive.files()
    assert len(files) >= 2, "the archive rolls to a new file past max_file_bytes"
    read_back = {}
    for path in files:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                assert record.rec_type == "response"
                assert record.http_headers.get_header("Content-Encoding") is None  # body is stored decoded
                read_back[record.rec_headers.get_header("WARC-Target-URI")] = record.content_stream().read()
    assert read_back == pages
