"""Each typed outcome with a real-looking page; none of them may pass as an article."""

import gzip
from pathlib import Path

import pytest

from connectors.cleaning.extract import extract_article
from connectors.http.outcomes import Outcome
from connectors.page_verdicts import page_verdict

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"
EXTRACTION = Path(__file__).resolve().parents[1] / "data" / "extraction"


@pytest.mark.parametrize(
    ("page", "outcome"),
    [
        ("challenge.html", Outcome.BLOCKED),
        ("consent.html", Outcome.CONSENT_WALL),
        ("soft404.html", Outcome.SOFT_404),
        ("js_shell.html", Outcome.NEEDS_JAVASCRIPT),
        ("paywall.html", Outcome.PAYWALLED),
    ],
)
def test_interstitial_pages_get_their_outcome(page: str, outcome: Outcome) -> None:
    html = (PAGES / page).read_text(encoding="utf-8")
    verdict = page_verdict(html, extract_article(html, url="https://news.example.org/story"))
    assert verdict.outcome is outcome, verdict.reason
    assert not verdict.is_article


def test_real_news_articles_pass() -> None:
    pages = sorted(p for p in EXTRACTION.glob("*.html.gz") if not p.name.startswith("readability-"))
    assert pages, "the extraction fixtures hold real news pages"
    for path in pages:
        html = gzip.decompress(path.read_bytes()).decode("utf-8")
        verdict = page_verdict(html, extract_article(html))
        assert verdict.is_article, f"{path.name}: {verdict.reason}"


def test_a_stub_without_interstitial_markers_is_not_an_article() -> None:
    html = "<html><head><title>Gallery</title></head><body><p>Photos of the week.</p></body></html>"
    verdict = page_verdict(html, extract_article(html))
    assert verdict.outcome is Outcome.NOT_AN_ARTICLE
    assert "under the minimum of 80" in verdict.reason
