from pathlib import Path

import pytest

from connectors.base import Rejected
from connectors.cleaning.repairs import strip_glued_title
from connectors.seeds import SeedSource, read_seed_file, split_seed_text
from schemas import CleanedArticle

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
TITLE = "Leader Urges Mounting Political Pressure on US, Israel to Stop Gaza Massacre"


def test_the_seed_article_comes_out_repaired() -> None:
    (article,) = list(SeedSource(SEEDS, max_file_bytes=1_000_000).items())
    assert isinstance(article, CleanedArticle)
    assert article.article_id == "seed-0a8afec63f5aff32"
    assert article.title == TITLE
    assert article.body.startswith("The Leader made the remarks")
    assert TITLE not in article.body
    assert article.body.endswith("signed by Tehran and Baghdad.")
    assert len(article.paragraphs) == 15  # 16 non-blank lines less the title line


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        (f"{TITLE}The Leader made the remarks", "The Leader made the remarks"),
        (f"{TITLE} The Leader made the remarks", "The Leader made the remarks"),
        (f"{TITLE}: The Leader made the remarks", "The Leader made the remarks"),
        (f"{TITLE.upper()}The Leader made", "The Leader made"),
        (f"{TITLE.replace(' ', '  ')}\u00a0The Leader", "The Leader"),
        (TITLE, ""),
        ("The Leader made the remarks", "The Leader made the remarks"),
        ("Leader Urges calm", "Leader Urges calm"),
    ],
)
def test_glued_title_repair(paragraph: str, expected: str) -> None:
    assert strip_glued_title(TITLE, paragraph) == expected


def test_glued_title_repair_does_not_cut_a_word_that_merely_starts_with_the_title() -> None:
    assert strip_glued_title("Rain", "Rainfall records were broken") == "Rainfall records were broken"
    assert strip_glued_title("", "anything") == "anything"


def test_split_seed_text_handles_crlf_and_extra_blank_lines() -> None:
    title, body = split_seed_text("Title here\r\n\r\n\r\nTitle hereFirst para.\r\n \r\nSecond\n  para.\n")
    assert title == "Title here"
    assert body == "First para.\n\nSecond para."


@pytest.mark.parametrize(
    ("name", "content", "error_type"),
    [
        ("001_empty.txt", b"", "no_title"),
        ("002_binary.txt", b"Title\n\n\x00\x01\x02\x03binary", "binary"),
        ("003_latin1.txt", "Titre\n\nCaf\u00e9 cr\u00e8me".encode("latin-1"), "not_utf8"),
        ("004_notitle.txt", b"\n\nBody without a title", "no_title"),
        ("005_nobody.txt", b"Only a title\n\n   \n", "no_body"),
        ("notes.txt", b"Title\n\nBody", "bad_name"),
    ],
)
def test_malformed_seed_files_are_rejected_by_name(tmp_path: Path, name: str, content: bytes, error_type: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = read_seed_file(path, max_file_bytes=1_000)
    assert isinstance(result, Rejected)
    assert result.error_type == error_type
    assert name in result.reason
    dead_letter = result.to_dead_letter()
    assert dead_letter.stage == "replay" and dead_letter.source_name == name


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,  # an image with NUL bytes
        b"GIF89a" + bytes(range(1, 256)) * 4,  # no NUL, but control bytes and invalid UTF-8
        b"Title\n\n" + b"a" * 200 + b"\xff\x01\x02\x03\x04\x05",  # valid prefix, then binary
    ],
)
def test_a_binary_seed_is_reported_as_binary_not_as_an_encoding_problem(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "001_picture.txt"
    path.write_bytes(content)
    result = read_seed_file(path, max_file_bytes=10_000)
    assert isinstance(result, Rejected)
    assert result.error_type == "binary", result.reason
    assert "UTF-8" not in result.reason


def test_oversized_seed_is_rejected_with_the_limit_named(tmp_path: Path) -> None:
    path = tmp_path / "001_big.txt"
    path.write_text("Title\n\n" + "word " * 500)
    result = read_seed_file(path, max_file_bytes=100)
    assert isinstance(result, Rejected)
    assert "limits.max_article_bytes=100" in result.reason


def test_one_bad_seed_does_not_stop_the_rest(tmp_path: Path) -> None:
    (tmp_path / "001_good.txt").write_text("Good title\n\nGood body.")
    (tmp_path / "002_bad.txt").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "003_good2.txt").write_text("Another\n\nAnother body.")
    items = list(SeedSource(tmp_path, max_file_bytes=10_000).items())
    assert [type(i).__name__ for i in items] == ["CleanedArticle", "Rejected", "CleanedArticle"]
