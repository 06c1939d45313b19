"""The PostgreSQL sink's pure pieces and its settings; writes to a real server are tested in
tests/integration/test_sinks_idempotent.py."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from newswire import wiring
from newswire.cli import main
from newswire.settings import Settings, SinkSettings
from newswire.testing.postgres import postgres_binaries
from pipeline.sinks.parquet import ParquetSink
from pipeline.sinks.postgres import PostgresSink, article_row, last_copy_per_id
from schemas import EnrichedArticle, SourceKind, SourceRef


def _article(number: int, *, title: str = "Title", body: str | None = None) -> EnrichedArticle:
    return EnrichedArticle(
        article_id=f"seed-{number:06d}",
        title=f"{title} {number}",
        body=body or f"Body of article {number}.",
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=SourceRef(kind=SourceKind.SEED, name=f"{number:03d}_x.txt"),
        enriched_at=datetime(2026, 1, 1, tzinfo=UTC),
        content_fingerprint=f"{number:064x}",
        word_count=4,
    )


def test_the_last_copy_of_an_id_in_a_batch_wins_in_first_seen_order() -> None:
    batch = [_article(1), _article(2), _article(1, title="Updated")]
    kept = last_copy_per_id(batch)
    assert [(a.article_id, a.title) for a in kept] == [("seed-000001", "Updated 1"), ("seed-000002", "Title 2")]


def test_nul_characters_are_replaced_because_postgresql_text_cannot_hold_them() -> None:
    row = article_row(_article(1, body="before\x00after \\u0000 stays literal"))
    assert row[3] == "before\ufffdafter \\u0000 stays literal"
    record = json.loads(row[-1])
    assert record["body"] == "before\ufffdafter \\u0000 stays literal"
    assert "\\u0000" not in row[-1].replace("\\\\u0000", ""), "no NUL escape is left for jsonb to reject"


def test_a_password_in_the_dsn_is_refused_so_it_cannot_leak_unmasked() -> None:
    for dsn in ("postgresql://u:hunter2@db/news", "host=db user=u password=hunter2"):
        with pytest.raises(ValueError, match="password"):
            PostgresSink(dsn)
        with pytest.raises(ValidationError, match="must not carry a password"):
            SinkSettings(postgres_dsn=dsn)


def test_bad_table_names_and_dsns_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="lower-case SQL identifier"):
        PostgresSink("postgresql://u@db/news", table="articles; DROP TABLE x")
    with pytest.raises(ValidationError, match="not a PostgreSQL connection string"):
        SinkSettings(postgres_dsn="nonsense = = =")


@pytest.mark.parametrize("length", [1, 50, 51, 53, 56, 60])
def test_settings_and_the_sink_accept_the_same_table_names(length: int) -> None:
    """One rule: a name the settings accept is one the sink accepts, and the other way round."""
    table = "t" * length
    try:
        SinkSettings(postgres_table=table)
        settings_accept = True
    except ValidationError:
        settings_accept = False
    try:
        PostgresSink("postgresql://u@db/news", table=table)
        sink_accepts = True
    except ValueError:
        sink_accepts = False
    assert settings_accept == sink_accepts
    # Its index name must fit PostgreSQL's 63 characters, or the server truncates it silently.
    assert sink_accepts == (len(f"{table}_by_published") <= 63)


def test_the_sink_pickles_without_a_connection_and_keeps_the_password_masked() -> None:
    sink = PostgresSink("postgresql://u@db/news", password=SecretStr("hunter2"))
    copy = pickle.loads(pickle.dumps(sink))
    assert copy._db is None and copy.dsn == sink.dsn
    assert "hunter2" not in repr(copy.__dict__)


def test_wiring_builds_the_new_sinks_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        sinks=SinkSettings(
            enabled=("postgres", "parquet"),
            output_dir=tmp_path,
            postgres_dsn="host=db.example dbname=news user=writer",
            postgres_password=SecretStr("hunter2"),
            postgres_table="news_articles",
            parquet_roll_bytes=2**20,
        )
    )
    postgres, parquet = wiring.sinks(settings)
    assert isinstance(postgres, PostgresSink) and postgres.table == "news_articles"
    assert isinstance(parquet, ParquetSink)
    assert parquet.root == (tmp_path / "parquet").resolve() and parquet.roll_bytes == 2**20


def test_settings_command_masks_the_postgres_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSWIRE_SINKS__POSTGRES_PASSWORD", "hunter2")
    assert main(["settings"]) == 0
    assert "hunter2" not in capsys.readouterr().out


def test_missing_postgresql_binaries_fail_the_fixture_saying_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"\.ci/run installs it \(apt-get install -y postgresql\)"):
        postgres_binaries(tmp_path)
    (tmp_path / "16" / "bin").mkdir(parents=True)
    (tmp_path / "15" / "bin").mkdir(parents=True)
    for version in ("15", "16"):
        for binary in ("postgres", "initdb"):
            (tmp_path / version / "bin" / binary).touch()
    assert postgres_binaries(tmp_path) == tmp_path / "16" / "bin", "the newest installed version"
