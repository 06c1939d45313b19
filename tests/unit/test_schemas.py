from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas import (
    CleanedArticle,
    DeadLetter,
    EnrichedArticle,
    RecordDecodeError,
    SourceKind,
    SourceRef,
    article_id_for_seed,
    article_id_for_url,
    canonicalize_url,
    decode,
    encode,
    record_headers,
)


def _article(**overrides: object) -> CleanedArticle:
    fields: dict[str, object] = {
        "article_id": article_id_for_seed("0a8afec63f5aff32"),
        "title": "A title",
        "body": "First paragraph.\n\nSecond paragraph.",
        "fetched_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "source": SourceRef(kind=SourceKind.SEED, name="000_0a8afec63f5aff32.txt"),
    }
    fields.update(overrides)
    return CleanedArticle.model_validate(fields)


def test_round_trip_keeps_every_field() -> None:
    article = _article(published_at=datetime(2026, 1, 1, tzinfo=UTC), authors=["A. Writer"], tags=["politics"])
    assert decode(encode(article), CleanedArticle) == article


def test_timestamps_are_converted_to_utc() -> None:
    article = _article(published_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=3))))
    assert article.published_at == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert b'"published_at":"2026-01-01T09:00:00Z"' in encode(article)


def test_naive_timestamp_is_rejected_with_a_readable_reason() -> None:
    data = encode(_article()).replace(b'"2026-01-02T03:04:05Z"', b'"2026-01-02T03:04:05"')
    with pytest.raises(RecordDecodeError, match="fetched_at: Value error, timestamp has no timezone"):
        decode(data, CleanedArticle)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "empty record"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"title": "x"}', "article_id: Field required"),
        (b"[]", "invalid CleanedArticle"),
    ],
)
def test_decode_rejects_bad_records_readably(data: bytes | None, message: str) -> None:
    with pytest.raises(RecordDecodeError, match=message):
        decode(data, CleanedArticle)


def test_blank_title_and_unknown_fields_are_rejected() -> None:
    with pytest.raises(RecordDecodeError, match="title: Value error, must contain non-whitespace text"):
        decode(encode(_article()).replace(b'"A title"', b'"   "'), CleanedArticle)
    with pytest.raises(RecordDecodeError, match="surprise: Extra inputs are not permitted"):
        decode(encode(_article())[:-1] + b',"surprise":1}', CleanedArticle)


def test_article_id_is_stable_and_ignores_tracking_parameters() -> None:
    plain = article_id_for_url("https://www.example.com/news/story?id=7")
    tracked = article_id_for_url("HTTPS://WWW.Example.com:443/news/story?utm_source=x&id=7&fbclid=abc#comments")
    assert plain == tracked
    assert plain.startswith("url-") and len(plain) == 4 + 24
    assert article_id_for_url("https://www.example.com/news/other") != plain
    assert article_id_for_seed("0a8afec63f5aff32") == "seed-0a8afec63f5aff32"
    with pytest.raises(ValueError, match="seed id"):
        article_id_for_seed("../etc/passwd")


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("http://Example.COM", "http://example.com/"),
        ("https://example.com:8443/a?b=1&gclid=2", "https://example.com:8443/a?b=1"),
        ("https://example.com/a?z=1&a=2", "https://example.com/a?z=1&a=2"),
        ("https://example.com/a#top", "https://example.com/a"),
    ],
)
def test_canonicalize_url(url: str, canonical: str) -> None:
    assert canonicalize_url(url) == canonical


@pytest.mark.parametrize("url", ["ftp://example.com/x", "/relative/path", "mailto:a@b.c", "https://"])
def test_canonicalize_url_rejects_non_http(url: str) -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        canonicalize_url(url)


def test_dead_letter_keeps_non_utf8_original_bytes() -> None:
    dead = DeadLetter(
        stage="decode", error_type="invalid_record", error="bad", occurred_at=datetime.now(UTC), original=b"\xff\x00x"
    )
    assert decode(encode(dead), DeadLetter).original == b"\xff\x00x"


def test_enriched_article_extends_cleaned_article() -> None:
    cleaned = _article()
    enriched = EnrichedArticle.model_validate(
        {**dict(cleaned), "enriched_at": datetime.now(UTC), "content_fingerprint": "ab" * 32, "word_count": 4}
    )
    assert decode(encode(enriched), EnrichedArticle) == enriched
    assert decode(encode(enriched), EnrichedArticle).title == cleaned.title


def test_headers_name_schema_and_version() -> None:
    headers = dict(record_headers(_article()))
    assert headers == {
        "content-type": b"application/json",
        "schema": b"CleanedArticle",
        "schema-version": b"1",
    }


def test_effective_language_is_the_detected_one_else_the_declared_one() -> None:
    from schemas import LanguageGuess

    def enriched(**fields: object) -> EnrichedArticle:
        return EnrichedArticle.model_validate(
            {**dict(_article(**fields)), "enriched_at": datetime.now(UTC), "content_fingerprint": "ab" * 32}
        )

    assert enriched(language="en").effective_language == "en"
    detected = enriched(language="en").model_copy(update={"detected_language": LanguageGuess(code="de", confidence=1)})
    assert detected.effective_language == "de"
    assert enriched().effective_language is None
    assert "effective_language" not in enriched().model_dump()  # derived, not part of the record
