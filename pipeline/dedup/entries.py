"""What the dedup index stores, and under which keys: the one place the key layout is spelled.

Four kinds of entry, each under its own key prefix: an article's identity (``id:``, the
decision made for its latest record), its signatures (``sig:``, what later articles are
compared with), a body fingerprint's holder (``fp:``), and an LSH band's owners (keys
``<scheme><version>:...`` made by ``signature.LshScheme.band_keys``). Entries are JSON
objects; the ``TypedDict``s here say which fields each holds, so a reader sees a field's
name and type instead of a bare ``dict``. This module holds no decision logic and does no
I/O; changing a key layout orphans every entry written before, so never do it silently.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

IDENTITY = "id"
SIGNATURE = "sig"
FINGERPRINT = "fp"


def identity_key(article_id: str) -> str:
    return f"{IDENTITY}:{article_id}"


def signature_key(article_id: str) -> str:
    return f"{SIGNATURE}:{article_id}"


def fingerprint_key(content_fingerprint: str) -> str:
    return f"{FINGERPRINT}:{content_fingerprint}"


def kind_of(key: str) -> str:
    """``id``, ``sig``, ``fp``, or a band scheme with its version (``near1``, ``lede1``)."""
    return key.split(":", 1)[0]


def is_band(key: str) -> bool:
    return kind_of(key) not in (IDENTITY, SIGNATURE, FINGERPRINT)


def article_of(prec: str) -> str:
    """The article id a precedence string (``"<published>|<article id>"``) ends with."""
    return prec.split("|", 1)[1]


class IdentityEntry(TypedDict):
    """``id:<article id>``: the latest record of an article and the decision made for it."""

    revision: str
    fingerprints: list[str]
    version: int
    fetched_at: float
    story: str | None
    decision: dict[str, Any]  # ``decide.Decision.to_entry()``
    source: dict[str, Any]
    canonical_url: str | None
    decided_at: float


class SignatureEntry(TypedDict):
    """``sig:<article id>``: what later articles are compared with (base64 MinHash signatures)."""

    signatures: list[str]  # one per body recorded for the article (its versions)
    story_signature: str
    precedence: str
    story: str | None
    copy_of: list[Any] | None  # ``decide.CopyOf`` as a JSON list; None while the article is kept


class FingerprintEntry(TypedDict):
    """``fp:<content fingerprint>``: the earliest article recorded with this exact body."""

    article_id: str
    precedence: str
    story: str | None


class BandEntry(TypedDict):
    """A band key: the precedences of the earliest articles recorded under it, sorted, capped."""

    p: list[str]


def band_precedences(entry: dict[str, Any]) -> list[str]:
    # Entries written before owners were kept as bare precedences hold [precedence, id] pairs.
    if "p" in entry:
        return cast(BandEntry, entry)["p"]
    return [prec for prec, _ in entry["owners"]]
