"""The extraction benchmark finds its reference sets by their layout and skips absent ones."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bench.extraction.datasets import body_cases, body_sets, date_cases, title_cases


def write_body_set(folder: Path, pages: dict[str, tuple[str, str | None]]) -> None:
    (folder / "html").mkdir(parents=True)
    truth = {}
    for name, (body, url) in pages.items():
        (folder / "html" / f"{name}.html.gz").write_bytes(gzip.compress(f"<p>{body}</p>".encode()))
        truth[name] = {"articleBody": body, "url": url}
    (folder / "ground-truth.json").write_text(json.dumps(truth), encoding="utf-8")


def test_every_folder_with_the_body_set_layout_is_found_and_others_are_not(tmp_path: Path) -> None:
    write_body_set(tmp_path / "set-b", {"p1": ("Second set body.", None)})
    write_body_set(tmp_path / "set-a", {"p2": ("First set body.", "https://example.org/a")})
    (tmp_path / "notes").mkdir()
    (tmp_path / "half-copied").mkdir()
    (tmp_path / "half-copied" / "ground-truth.json").write_text("{}", encoding="utf-8")
    found = body_sets(tmp_path)
    assert [body_set.name for body_set in found] == ["set-a", "set-b"]
    [case] = body_cases(found[1])
    assert (case.name, case.url, case.body) == ("p1", None, "Second set body.")
    assert "<p>Second set body.</p>" in case.html


def test_missing_sets_give_no_cases_instead_of_an_error(tmp_path: Path) -> None:
    assert body_sets(tmp_path / "nowhere") == []
    assert list(date_cases(tmp_path)) == []
    assert list(title_cases(tmp_path)) == []
