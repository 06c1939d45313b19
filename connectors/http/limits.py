"""The named, configurable limits of the HTTP layer.

They live beside the client so that connectors depend on nothing above them; the
shell's settings object embeds this model as its ``fetch`` section.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FetchSettings(BaseModel):
    """Every limit of the one HTTP layer that all connectors fetch through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: str = Field(
        "newswire/0.1 (news feed ingestion bot; honours robots.txt)",
        description="Sent on every request; operators should add a contact URL or address.",
    )
    robots_agent: str = Field("newswire", description="Product token matched against robots.txt groups.")
    respect_robots_txt: bool = True
    robots_ttl_s: float = Field(3600.0, gt=0, description="How long a fetched robots.txt is trusted per host.")
    robots_error_ttl_s: float = Field(
        300.0, gt=0, description="How long a robots.txt that could not be fetched blocks its host before a new try."
    )
    robots_max_bytes: int = Field(512_000, ge=1_024, description="robots.txt bytes parsed; RFC 9309 asks for 500 KiB.")
    robots_crawl_delay_max_s: float = Field(
        30.0, ge=0, description="A robots.txt Crawl-delay slows its host down to at most this interval."
    )
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(15.0, gt=0, description="Longest silence between two reads of one response.")
    total_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Wall-clock budget of one fetch: resolution, every redirect hop, retry and its waits. "
        "Time spent queueing for the per-host politeness slot is not counted.",
    )
    max_body_bytes: int = Field(
        10_000_000, ge=1, description="Largest decompressed body; enforced while streaming, so bombs stop early."
    )
    max_redirects: int = Field(5, ge=0)
    max_retries: int = Field(2, ge=0, description="Extra attempts after a 5xx, 429, timeout or connection error.")
    retry_backoff_s: float = Field(0.5, ge=0, description="First backoff; doubles per retry, with jitter.")
    retry_backoff_max_s: float = Field(10.0, ge=0)
    retry_after_max_s: float = Field(
        1.0,
        ge=0,
        description="Longest Retry-After (429/503) waited out inside one fetch; a longer one ends the fetch as "
        "rate_limited, and the ingest schedule tries again once the wait has passed (ingest.retry_after_max_s), "
        "so a worker never sleeps on one host while others wait.",
    )
    per_host_interval_s: float = Field(
        1.0,
        ge=0,
        description="Least time between two requests to one host (1.0 = at most 1 req/s), counted from the start "
        "and from the end of the one before, in every process of the deployment.",
    )
    per_host_concurrency: int = Field(1, ge=1, description="Requests to one host in flight at once.")
    max_hosts_pooled: int = Field(64, ge=1, description="Connection pools kept (one per host address).")
    connections_per_host: int = Field(2, ge=1, description="Idle keep-alive connections kept per host address.")
    allow_addresses: tuple[str, ...] = Field(
        (),
        description="CIDRs (10.0.0.0/8, 127.0.0.1/32) or host names fetched even though private, loopback, "
        "link-local or reserved. Cloud metadata addresses stay refused whatever is listed.",
    )
