"""The console's pages escape what they show: article text, feed fields and dead letters are
untrusted. Rendered through Starlette's test client over a real SQLite sink (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from newswire.console.app import Console, create_app
from newswire.settings import ObservabilitySettings, QualitySettings, Settings, SinkSettings
from pipeline.sinks.sqlite import SqliteSink
from schemas import DeadLetter, EnrichedArticle, SourceKind, SourceRef, encode

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(
        sinks=SinkSettings(output_dir=tmp_path / "output"),
        quality=QualitySettings(state_file=tmp_path / "quality.sqlite3"),
        observability=ObservabilitySettings(metrics_port=1, ingest_metrics_port=1),
    )
    sink = SqliteSink(settings.sinks.sqlite_path)
    sink.open()
    sink.write(
        [
            EnrichedArticle(
                article_id="url-hostile1",
                title=f"Breaking {HOSTILE}",
                body=f"First paragraph {HOSTILE}.\n\nSecond paragraph about the harbour.",
                authors=[HOSTILE],
                fetched_at=datetime(2026, 12, 1, tzinfo=UTC),
                source=SourceRef(kind=SourceKind.FEED, name="hostile-feed", url="http://127.0.0.1/feed"),
                enriched_at=datetime(2026, 12, 1, tzinfo=UTC),
                content_fingerprint="0" * 64,
                field_sources={"title": f"page {HOSTILE}"},
            )
        ]
    )
    sink.close()
    console = Console(settings)
    dead_letter = DeadLetter.of(
        stage="extract",
        error_type="not_an_article",
        error=f"page says {HOSTILE}",
        original=HOSTILE.encode(),
        source_name="hostile-feed",
        source_url="http://127.0.0.1/story",
    )
    console.dead_letters.add(SimpleNamespace(value=encode(dead_letter), partition=0, offset=7))
    return TestClient(create_app(console))


@pytest.mark.parametrize(
    "path", ["/articles", "/articles?q=harbour", "/articles/url-hostile1", "/dead-letters", "/sources"]
)
def test_nothing_untrusted_reaches_the_page_as_markup(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(" in page.text or path == "/sources"


def test_the_article_page_shows_fields_provenance_and_body(client: TestClient) -> None:
    page = client.get("/articles/url-hostile1").text
    assert "Second paragraph about the harbour." in page
    assert "page &lt;script&gt;" in page  # the title's provenance, escaped
    assert client.get("/articles/url-missing").status_code == 404


def test_dead_letters_filter_by_stage_type_and_source(client: TestClient) -> None:
    assert "not_an_article" in client.get("/dead-letters?stage=extract&source=hostile-feed").text
    assert "No dead letters." in client.get("/dead-letters?type=invalid_record").text
    page = client.get("/dead-letters").text
    assert "partition 0, offset 7" in page
    assert f"({len(HOSTILE.encode())} bytes)" in page


def test_the_article_page_lists_its_versions_duplicates_and_story(client: TestClient, tmp_path: Path) -> None:
    from schemas import DuplicateLayer, DuplicateNotice

    console = client.app.state.console  # type: ignore[attr-defined]
    base = {
        "article_id": "url-hostile1",
        "title": "Breaking, second version",
        "body": "A changed body.",
        "fetched_at": datetime(2026, 12, 1, 1, tzinfo=UTC),
        "source": SourceRef(kind=SourceKind.FEED, name="hostile-feed"),
        "enriched_at": datetime(2026, 12, 1, 1, tzinfo=UTC),
        "content_fingerprint": "1" * 64,
        "version": 2,
    }
    console.articles.add_enriched(SimpleNamespace(value=encode(EnrichedArticle(**base)), partition=1, offset=4))
    notice = DuplicateNotice(
        article_id="url-copy9",
        duplicate_of="url-hostile1",
        layer=DuplicateLayer.NEAR_DUPLICATE,
        similarity=0.91,
        source=SourceRef(kind=SourceKind.FEED, name="copy-feed"),
        detected_at=datetime(2026, 12, 1, 2, tzinfo=UTC),
    )
    console.articles.add_duplicate(SimpleNamespace(value=encode(notice), partition=0, offset=1))
    page = client.get("/articles/url-hostile1").text
    assert "Breaking, second version" in page and "p1 @4" in page
    assert "url-copy9" in page and "near_duplicate" in page and "0.91" in page and "copy-feed" in page
