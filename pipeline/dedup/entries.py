"""What the dedup index stores, and under which keys: the one place the key layout is spelled.

Four kinds of entry, each under its own key prefix: an article's identity (``id:``, the
decision made for its latest record), its signatures (``sig:``, what later articles are
compared with), a body fingerprint's holder (``fp:``), and an LSH band's owners (keys
``<scheme><version><layout>:...`` made by ``signature.LshScheme.band_keys``); and one marker
(``meta:band-layout``) saying until when band keys of the earlier layout may still be live.
Entries are JSON objects; the ``TypedDict``s here say which fields each holds, so a reader
sees a field's name and type instead of a bare ``dict``. This module holds no decision logic
and does no I/O. Changing a key layout orphans every entry written before unless decisions
read both layouts for a horizon, as they do for band keys (``BandLayoutEntry``), so never do
it silently.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

IDENTITY = "id"
SIGNATURE = "sig"
FINGERPRINT = "fp"
META = "meta"
# ``meta:band-layout``: until when the index may still hold band keys of the layout before
# ``signature.BAND_KEY_LAYOUT``, so that decisions look those up too (``BandLayoutEntry``).
BAND_LAYOUT_KEY = f"{META}:band-layout"


def identity_key(article_id: str) -> str:
    return f"{IDENTITY}:{article_id}"


def signature_key(article_id: str) -> str:
    return f"{SIGNATURE}:{article_id}"


def fingerprint_key(content_fingerprint: str) -> str:
    return f"{FINGERPRINT}:{content_fingerprint}"


def kind_of(key: str) -> str:
    """``id``, ``sig``, ``fp``, or a band scheme with its version (``near2b``, ``lede2b``)."""
    return key.split(":", 1)[0]


def is_band(key: str) -> bool:
    return kind_of(key) not in (IDENTITY, SIGNATURE, FINGERPRINT, META)


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
    # Kept articles only: a duplicate is never a story candidate again. Entries written
    # before this hold it for duplicates too; it is simply not read there.
    story_signature: NotRequired[str]
    precedence: str
    story: str | None
    copy_of: list[Any] | None  # ``decide.CopyOf`` as a JSON list; None while the article is kept


class FingerprintEntry(TypedDict):
    """``fp:<content fingerprint>``: the earliest article recorded with this exact body."""

    article_id: str
    precedence: str
    story: str | None


class BandLayoutEntry(TypedDict):
    """``meta:band-layout``, written once by the first worker that opens an index, never expiring.

    An index that already held entries then was filled by code of the earlier band key
    layout, whose keys stay live for up to a horizon: until ``legacy_until`` (epoch seconds)
    decisions look up both layouts, so no article recorded before an upgrade is missed. A
    new index has nothing to look up (0).
    """

    legacy_until: float


def band_layout_marker(latest_expiry: float | None) -> BandLayoutEntry:
    """The marker for an index whose live entries expire at ``latest_expiry`` at the latest (None: it holds none)."""
    return {"legacy_until": latest_expiry or 0.0}


def legacy_bands_live(marker: dict[str, Any] | None, now: float) -> bool:
    """Whether band keys of the earlier layout may still be live; an index without a marker may hold them."""
    return marker is None or float(marker["legacy_until"]) > now


class BandEntry(TypedDict):
    """A band key: the precedences of the earliest articles recorded under it, sorted, capped."""

    p: list[str]


def band_precedences(entry: dict[str, Any]) -> list[str]:
    # Entries written before owners were kept as bare precedences hold [precedence, id] pairs.
    if "p" in entry:
        return cast(BandEntry, entry)["p"]
    return [prec for prec, _ in entry["owners"]]
