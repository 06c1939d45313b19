from pathlib import Path

import pytest

from connectors.sources import DEFAULT_SOURCES_FILE, SourcesFileError, SourceType, load_sources


def test_the_shipped_default_file_is_valid() -> None:
    sources = load_sources(DEFAULT_SOURCES_FILE)
    assert len(sources) >= 5
    assert {s.type for s in sources} == {SourceType.FEED}
    assert len({s.name for s in sources}) == len(sources)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - name: a\n    type: feed\n    url: ftp://x.org/feed\n",
            "line 4: sources.0.url: Value error, not an absolute http",
        ),
        (
            "sources:\n  - name: a\n    type: podcast\n    url: https://x.org/\n",
            "line 3: sources.0.type: Input should be 'feed'",
        ),
        (
            "sources:\n  - name: a\n    type: feed\n    url: https://x.org/\n  - name: b\n    type: feed\n"
            "    url: https://y.org/\n    min_poll_interval_s: 900\n    max_poll_interval_s: 60\n",
            "line 5: sources.1: Value error, min_poll_interval_s must not exceed",
        ),
        (
            "sources:\n  - name: a\n    type: feed\n    url: https://x.org/\n    colour: red\n",
            "line 5: sources.0.colour: Extra inputs",
        ),
        (
            "sources:\n  - name: a\n    type: feed\n    url: https://x.org/\n  - name: a\n    type: page\n    url: https://x.org/p\n",
            "source name 'a' is used twice",
        ),
        ("sources: [\n  - oops", "not valid YAML"),
    ],
)
def test_an_invalid_file_is_rejected_with_line_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(SourcesFileError) as error:
        load_sources(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourcesFileError, match="cannot read the sources file"):
        load_sources(tmp_path / "nope.yaml")
