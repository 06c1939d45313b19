"""extract_article and every repair must never raise, whatever they are given."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.cleaning.extract import ExtractedPage, extract_article
from connectors.cleaning.repairs import (
    clean_inline_text,
    drop_bylines,
    drop_furniture_lines,
    drop_headline_copies,
    drop_repeated_paragraphs,
    join_broken_hyphenation,
    strip_glued_title,
)

# Latin, Cyrillic, CJK, Arabic and Hebrew letters, markup characters, mojibake fragments,
# dashes, invisible characters and NUL.
MIXED_SCRIPT = st.text(
    alphabet=st.sampled_from(
        list("abcXYZ019 \n\t<>/&;#\"'=-|:ÃÂ€éüßдяж中文字العربيةעבר\u2013\u2014\u2122\u00ad\u200b\x00")
    ),
    max_size=400,
)
ANY_TEXT = st.one_of(st.text(max_size=400), MIXED_SCRIPT)
TAGS = st.sampled_from(["p", "div", "h1", "title", "meta", "script", "article", "time", "br", "li", "html", "body"])


@st.composite
def html_documents(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        tag = draw(TAGS)
        parts.append(f"<{tag} content='{draw(MIXED_SCRIPT)}'>{draw(ANY_TEXT)}</{tag}>")
    if draw(st.booleans()):
        parts.append(f'<script type="application/ld+json">{draw(ANY_TEXT)}</script>')
    return "<html><head>" + "".join(parts) + "</head></html>"


settings.register_profile("cleaning", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile("cleaning")


@PROFILE
@given(st.one_of(ANY_TEXT, html_documents(), st.binary(max_size=2000)))
def test_extract_article_never_raises(document: str | bytes) -> None:
    assert isinstance(extract_article(document, "https://example.org/2020/01/02/story"), ExtractedPage)


def test_extract_article_survives_huge_and_deeply_nested_input() -> None:
    paragraph = "<p>" + "Word " * 200 + "</p>"
    assert isinstance(extract_article("<html><body>" + paragraph * 2000 + "</body></html>"), ExtractedPage)
    assert isinstance(extract_article("<div>" * 5000 + "text" + "</div>" * 5000), ExtractedPage)
    binary_looking = b"\xff\xfe" + "binary-looking".encode("utf-16-le") + bytes(range(256))
    assert isinstance(extract_article(binary_looking), ExtractedPage)


@PROFILE
@given(ANY_TEXT, ANY_TEXT)
def test_repairs_never_raise(text: str, other: str) -> None:
    assert isinstance(clean_inline_text(text), str)
    assert isinstance(strip_glued_title(other, text), str)
    assert isinstance(drop_headline_copies(text, [other]), str)
    assert isinstance(drop_bylines(text, [other]), str)
    assert isinstance(drop_furniture_lines(text), str)
    assert isinstance(drop_repeated_paragraphs(text), str)
    assert isinstance(join_broken_hyphenation(text), str)
