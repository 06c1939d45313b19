"""How an article is named: canonical URLs and the stable article id derived from them.

The id is part of the contract: the raw, enriched and duplicates topics are keyed by it
and every sink upserts by it, so the same article must always get the same id.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

# Query parameters that only track the click, never select the content.
_TRACKING_PARAMETERS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|igshid|"
    r"_ga|_gl|ref_src|cmpid|ocid|smid|sr_share|at_medium|at_campaign)$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SEED_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def canonicalize_url(url: str) -> str:
    """Normalise a URL so that trivially different spellings of one page compare equal.

    Lower-cases scheme and host, drops default ports, fragments and tracking parameters,
    and keeps the remaining query parameters in their original order (order can matter
    to the server). Raises ``ValueError`` for anything that is not an absolute http(s) URL.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # Filter the raw pairs rather than re-encoding them: servers may treat "a/b" and
    # "a%2Fb" differently, and the canonical URL is also the URL we fetch.
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not _TRACKING_PARAMETERS.match(unquote_plus(pair.split("=", 1)[0]))
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def article_id_for_url(canonical_url: str) -> str:
    digest = hashlib.sha256(canonicalize_url(canonical_url).encode("utf-8")).hexdigest()
    return f"url-{digest[:24]}"


def article_id_for_seed(seed_id: str) -> str:
    if not _SEED_ID.match(seed_id):
        raise ValueError(f"seed id {seed_id!r} must be 1-64 letters, digits, '-' or '_'")
    return f"seed-{seed_id}"
