"""The one settings object of newswire.

Everything configurable is a typed field here. Values come, highest priority first,
from environment variables (``NEWSWIRE_<SECTION>__<FIELD>``), the settings file
(``newswire.toml`` in the working directory, or the file named by ``NEWSWIRE_CONFIG``),
and the defaults below, which are the embedded defaults a fresh checkout runs on.

Only the shell (``newswire`` command, broker tooling) reads this module; connectors and
pipeline transforms receive plain typed arguments built from it, never the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connectors.http.limits import FetchSettings
from pipeline.enrichers import ENRICHERS
from pipeline.sinks import POSTGRES_TABLE_NAME, POSTGRES_TABLE_NAME_RULE, SINKS

ENV_PREFIX = "NEWSWIRE_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "NEWSWIRE_CONFIG"
DEFAULT_CONFIG_FILE = Path("newswire.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Settings that moved to another section: old name -> where it lives now. A settings
    # file written for an older newswire is refused with the new name, not "extra input".
    moved: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved_settings(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for old, new in cls.moved.items():
                if old in values:
                    raise ValueError(f"{old} is now {new}; rename it in your settings file or environment")
        return values


class KafkaSettings(Section):
    moved: ClassVar[dict[str, str]] = {"max_message_bytes": "derived from the limits section (limits.*)"}

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers.")
    client_id: str = "newswire"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    request_timeout_ms: int = Field(30_000, ge=1_000)
    compression_type: Literal["zstd", "gzip", "none"] = Field(
        # kafka-python compresses gzip at level 9, fixed: on the pipeline's outputs that cost about
        # 0.2 ms of CPU per article more than zstd (zstandard comes with apache-beam).
        "zstd",
        description="Producer compression; zstd compresses smaller and costs a third of gzip's CPU.",
    )


class TopicSettings(Section):
    raw: str = "newswire.articles.raw"
    enriched: str = "newswire.articles.enriched"
    duplicates: str = "newswire.articles.duplicates"
    dead_letter: str = "newswire.dead-letter"
    fetch_tasks: str = Field(
        "newswire.fetch-tasks", description="Page fetches queued by feed pollers, keyed by host for politeness."
    )
    partitions: int = Field(3, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int = Field(7 * 24 * 3600 * 1000, ge=-1, description="-1 keeps records forever.")
    compression_type: Literal["producer", "gzip", "snappy", "lz4", "zstd", "uncompressed"] = "producer"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.raw, self.enriched, self.duplicates, self.dead_letter, self.fetch_tasks)


# A Kafka record batch carries a header and per-record framing on top of the record
# itself: each topic, the broker and the clients accept this much more than the record.
BATCH_OVERHEAD_BYTES = 64 * 1024
# What a dead letter needs besides its original (stage, error, coordinates, source, ids,
# JSON framing): the original may take the rest of the dead-letter record, base64-encoded.
DEAD_LETTER_ENVELOPE_BYTES = 32 * 1024


class LimitSettings(Section):
    """The one place that decides how large records may be; every other size limit derives from it.

    Each topic's largest record is set here; the topics' ``max.message.bytes``, the local
    broker's ``message.max.bytes`` and ``replica.fetch.max.bytes``, the producers'
    ``max_request_size``, the consumers' fetch sizes, the seed replay's file limit and the
    checks where articles enter (connectors, replay, decode) and leave (the enriched write)
    are computed from these fields, so they cannot disagree.
    """

    max_article_bytes: int = Field(
        2 * 2**20,
        ge=64 * 1024,
        description="Largest cleaned article, as its encoded record on the raw topic. Larger ones are refused where "
        "they enter (connectors, replay) and dead-lettered by decode (too_large).",
    )
    enriched_headroom_bytes: int = Field(
        256 * 1024,
        ge=16 * 1024,
        description="How much an enriched article may outgrow its cleaned article. The enrichers add at most "
        "30 entities, 8 keywords, 3 summary sentences, countries and version fields: about 3 KiB measured on a "
        "1.5 MB article with every enricher on; the rest is room for new enrichers. An enriched article still "
        "larger is dead-lettered (stage encode, too_large) before any write.",
    )
    max_duplicate_notice_bytes: int = Field(
        64 * 1024, ge=4 * 1024, description="Largest record on the duplicates topic (a notice: ids, URL, source)."
    )
    max_fetch_task_bytes: int = Field(
        1 * 2**20, ge=16 * 1024, description="Largest record on the fetch-tasks topic (a feed entry to fetch)."
    )
    max_dead_letter_bytes: int = Field(
        1 * 2**20,
        ge=DEAD_LETTER_ENVELOPE_BYTES + 16 * 1024,
        description="Largest record on the dead-letter topic. A dead letter keeps its original whole when it fits "
        "(base64 in JSON, so about 3/4 of this after a 32 KiB envelope), else a prefix with the original's size, "
        "sha256 and its topic/partition/offset, so the rest is re-read from the raw topic.",
    )

    @property
    def max_enriched_bytes(self) -> int:
        """Largest record on the enriched topic: the largest article plus what enrichment may add."""
        return self.max_article_bytes + self.enriched_headroom_bytes

    @property
    def max_dead_letter_original_bytes(self) -> int:
        """The most of an original a dead letter carries: what base64 leaves of the record after its envelope."""
        return (self.max_dead_letter_bytes - DEAD_LETTER_ENVELOPE_BYTES) * 3 // 4

    @property
    def max_seed_file_bytes(self) -> int:
        """Seed files over this are refused before they are read: their article could not fit the raw topic."""
        return self.max_article_bytes

    def record_bytes(self, topics: TopicSettings) -> dict[str, int]:
        """The largest record of each of newswire's topics, by topic name."""
        return {
            topics.raw: self.max_article_bytes,
            topics.enriched: self.max_enriched_bytes,
            topics.duplicates: self.max_duplicate_notice_bytes,
            topics.dead_letter: self.max_dead_letter_bytes,
            topics.fetch_tasks: self.max_fetch_task_bytes,
        }

    @property
    def largest_record_bytes(self) -> int:
        return max(
            self.max_article_bytes,
            self.max_enriched_bytes,
            self.max_duplicate_notice_bytes,
            self.max_dead_letter_bytes,
            self.max_fetch_task_bytes,
        )

    @property
    def max_message_bytes(self) -> int:
        """Broker ``message.max.bytes``/``replica.fetch.max.bytes``, producer ``max_request_size`` and consumer
        ``max_partition_fetch_bytes``: the largest record of any topic with its batch framing."""
        return self.largest_record_bytes + BATCH_OVERHEAD_BYTES


class BrokerSettings(Section):
    """The local single-node KRaft broker provisioned from Maven Central for dev and CI."""

    home: Path = Field(Path(".newswire/broker"), description="Data, config, logs and the state file (pid, ports).")
    cache_dir: Path = Field(
        Path(".newswire/cache"), description="Kafka jars downloaded from Maven Central, shared by every broker home."
    )
    kafka_version: str = "4.4.0"
    scala_version: str = "2.13"
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=0, le=65535, description="0 picks a free port.")
    controller_port: int = Field(0, ge=0, le=65535, description="0 picks a free port.")
    heap: str = Field("512m", pattern=r"^\d+[kmgKMG]$")
    start_timeout_s: float = Field(120.0, gt=0)
    stop_timeout_s: float = Field(30.0, gt=0)


class ReplaySettings(Section):
    moved: ClassVar[dict[str, str]] = {"max_file_bytes": "limits.max_article_bytes"}

    seeds_dir: Path = Path("seeds")
    rate: float = Field(0.0, ge=0, description="Articles per second; 0 means as fast as possible.")
    loop_rate: float = Field(
        5.0,
        gt=0,
        description="Articles per second for `replay --loop` when neither --rate nor replay.rate sets one: "
        "an unpaced loop would fill the raw topic with thousands of copies a second.",
    )


class SinkSettings(Section):
    enabled: tuple[str, ...] = Field(
        ("sqlite", "jsonl"),
        description=f"Sinks the pipeline writes to, besides Kafka; any of: {', '.join(SINKS.names())}.",
    )
    output_dir: Path = Field(Path(".newswire/output"), description="Where the embedded sinks write.")
    sqlite_file: str = "articles.sqlite3"
    jsonl_file: str = "articles.jsonl"
    write_batch_size: int = Field(500, ge=1)
    postgres_dsn: str = Field(
        "postgresql://newswire@127.0.0.1:5432/newswire",
        description="libpq URL or key=value string of the PostgreSQL sink's database, without the password.",
    )
    postgres_password: SecretStr | None = Field(
        None, description="Password for postgres_dsn; unset means libpq's own (PGPASSWORD, ~/.pgpass, trust)."
    )
    postgres_table: str = Field(
        "articles",
        pattern=POSTGRES_TABLE_NAME,
        description=f"Table the PostgreSQL sink upserts into: {POSTGRES_TABLE_NAME_RULE}.",
    )
    parquet_dir: Path | None = Field(
        None, description="Root of the date-partitioned Parquet dataset; unset means <output_dir>/parquet."
    )
    parquet_roll_bytes: int = Field(
        32 * 2**20, ge=2**16, description="A Parquet file is sealed, and a new one started, past this size."
    )
    parquet_roll_interval_s: float = Field(
        3600.0, gt=0, description="A Parquet file is sealed once this old, however small."
    )
    parquet_compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    @property
    def sqlite_path(self) -> Path:
        return self.output_dir / self.sqlite_file

    @property
    def jsonl_path(self) -> Path:
        return self.output_dir / self.jsonl_file

    @property
    def parquet_path(self) -> Path:
        return self.parquet_dir if self.parquet_dir is not None else self.output_dir / "parquet"

    @field_validator("enabled")
    @classmethod
    def _registered_sinks(cls, enabled: tuple[str, ...]) -> tuple[str, ...]:
        return SINKS.check(enabled)

    @field_validator("postgres_dsn")
    @classmethod
    def _no_password_in_dsn(cls, dsn: str) -> str:
        # Checked at load time, so a DSN carrying a password is refused before it is ever
        # logged or printed with the settings. Imported here to keep settings loading light.
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            parsed = conninfo_to_dict(dsn)
        except ProgrammingError as error:
            raise ValueError(f"not a PostgreSQL connection string ({error})") from None
        if "password" in parsed:
            raise ValueError("must not carry a password: set sinks.postgres_password (a masked secret) instead")
        return dsn


class PipelineSettings(Section):
    moved: ClassVar[dict[str, str]] = {"max_record_bytes": "limits.max_article_bytes"}

    runner: str = Field(
        "FnApiRunner",
        description="Beam runner; the local default is the in-process FnApiRunner (never DirectRunner, "
        "which tries to download Prism).",
    )
    beam_options: list[str] = Field(
        default_factory=list, description="Extra Beam pipeline options, e.g. --flink_master=host:8081."
    )
    consumer_group: str = "newswire-pipeline"
    batch_interval_s: float = Field(2.0, ge=0, description="Pause between micro-batches when idle.")
    max_batch_records: int = Field(
        20_000, ge=1, description="Largest number of records one micro-batch reads per partition."
    )
    dedup_index: Path = Field(Path(".newswire/state/dedup.sqlite3"), description="Embedded dedup index (SQLite).")
    state_dir: Path = Field(
        Path(".newswire/state"),
        description="Where the pipeline keeps local state of its own: the Flink job server's home and, unless "
        "flink_checkpoint_dir is set, Flink checkpoints. Give each concurrent pipeline its own.",
    )
    dedup_redis_url: SecretStr | None = Field(
        None, description="Shared dedup index for several workers, e.g. redis://host:6379/0; replaces dedup_index."
    )
    dedup_horizon_s: float = Field(7 * 24 * 3600.0, gt=0, description="How long the dedup index remembers an entry.")
    dedup_near_threshold: float = Field(
        0.8, gt=0, le=1, description="Estimated Jaccard similarity of word shingles that makes a near-duplicate."
    )
    dedup_story_threshold: float = Field(
        0.3, gt=0, le=1, description="Similarity of content words at which two articles share a story_id."
    )
    dedup_near_duplicates: bool = Field(True, description="Run the near-duplicate layer (MinHash/LSH).")
    dedup_decide_batch: int = Field(
        2_000,
        ge=1,
        description="The most articles the dedup stage decides in one index transaction. The index's band keys are "
        "hashes, so a transaction touches most of the index's key pages whatever its size: fewer, larger "
        "transactions write each page once for more articles (at 20,000 articles, 500 a transaction cost 0.63 ms of "
        "index CPU an article, 1,500 cost 0.50 ms). Each holds the index's write lock for its duration (~1 s for "
        "1,500 articles), which other workers wait out, and its articles in memory.",
    )
    dedup_stories: bool = Field(True, description="Give each article a story_id.")
    enrichers: tuple[str, ...] = Field(
        # entities, keywords and summary cost ~0.3 ms each per article in pure Python; with them
        # on, the throughput benchmark fell below half of its no-enricher rate (0.40, and 0.48
        # without keywords and summary), so they are opt-in.
        ("text_stats", "language", "countries", "dateline"),
        description=f"Enrichers to run, in order; any of: {', '.join(ENRICHERS.names())}.",
    )
    entity_recogniser: Literal["rules", "model"] = Field(
        "rules",
        description="How `entities` finds names: 'rules' (gazetteer and capitalisation, any language, sub-millisecond) "
        "or 'model' (spaCy en_core_web_sm for English, rules for other languages; more accurate on organisations "
        "but ~50x slower).",
    )
    words_per_minute: int = Field(230, ge=1)
    parallelism: int | None = Field(
        None,
        ge=1,
        description="Parallel instances of every stage: Flink task slots, Dataflow's worker ceiling, and on the local "
        "FnApiRunner the worker processes a micro-batch of at least parallel_min_records is cut over (one pipeline "
        "each, offsets committed when all are done). Unset: the runner's default, which locally is every core.",
    )
    parallel_min_records: int = Field(
        500,
        ge=1,
        description="FnApiRunner: a micro-batch of fewer records runs whole in the service's own process; larger ones "
        "are cut over `parallelism` worker processes. Each piece pays its pipeline's start-up (0.4-1.6 s of CPU by "
        "machine), and a cut batch finishes sooner by half its work (3-9 ms of CPU a record). Lower shortens latency "
        "under light load (at 100 articles/s on 2 cores, 150 gave p50/p99 4.6-4.9/6.8-7.5 s against 6.1-7.7/8.9-10.5 "
        "s), but every cut batch decides some labels by which piece's index transaction runs first: an update whose "
        "two versions land in different pieces can be published as version 1 of the newer body (the final originals "
        "are the same).",
    )
    max_piece_records: int = Field(
        1_500,
        ge=1,
        description="FnApiRunner: the most records one worker process runs of a batch cut over `parallelism` "
        "processes; a larger batch is cut into more pieces, the same number for every process, `parallelism` at "
        "a time. Bounds a worker's memory (the in-process runner holds a piece's every stage in memory: ~0.1 MiB "
        "an article) whatever the batch size; each piece pays its pipeline's start-up (0.4-1.6 s of CPU by machine).",
    )
    flink_master: str = Field(
        "[local]", description="FlinkRunner: host:port of the JobManager's REST endpoint, or [local] (in-process)."
    )
    flink_job_server_jar: Path | None = Field(
        None,
        description="FlinkRunner: Beam Flink job server jar; unset means one provisioned from Maven Central into "
        "broker.cache_dir.",
    )
    job_endpoint: str | None = Field(
        None,
        pattern=r"^\S+:\d{1,5}$",
        description="FlinkRunner/PortableRunner: host:port of a running Beam job server (e.g. a Flink cluster's) to "
        "submit to; unset with FlinkRunner means newswire starts its own for each pipeline command and stops it "
        "with the command.",
    )
    flink_job_server_start_timeout_s: float = Field(
        120.0, gt=0, description="FlinkRunner: how long the job server newswire starts may take to answer."
    )
    environment_type: Literal["LOOPBACK", "PROCESS", "DOCKER", "EXTERNAL"] | None = Field(
        None, description="Where portable runners start the Python workers; unset is LOOPBACK with [local]."
    )
    environment_config: str | None = Field(
        None, description="For PROCESS: the worker boot command as JSON; for EXTERNAL: the worker pool's host:port."
    )
    checkpointing_interval_ms: int = Field(
        0,
        ge=0,
        description="Streaming on Flink: checkpoint interval; 0 (the default) turns checkpoints off. Offsets are "
        "committed after the writes either way; with checkpoints on, the [local] job stalled on a backlog.",
    )
    flink_checkpoint_dir: str | None = Field(
        None,
        description="Streaming on Flink: URI checkpoints are written under (file:///…, s3://…; one every TaskManager "
        "reaches); unset means flink-checkpoints/ under state_dir.",
    )
    streaming_window_s: float = Field(
        2.0, gt=0, description="Streaming: window before the dedup GroupByKeys; results leave once it closes."
    )
    watermark_lag_s: float = Field(
        1.0, ge=0, description="Streaming: how far the watermark trails the readers' clocks (skew between workers)."
    )

    @field_validator("enrichers")
    @classmethod
    def _registered_enrichers(cls, enrichers: tuple[str, ...]) -> tuple[str, ...]:
        return ENRICHERS.check(enrichers)


class RecoverySettings(Section):
    """How the pipeline service retries a failing micro-batch and waits out an outage."""

    batch_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Runs of a failing batch, while every dependency answers, before its range is split to find "
        "the records at fault (each then dead-lettered as 'poison').",
    )
    initial_backoff_s: float = Field(
        1.0,
        gt=0,
        le=600,
        description="Pause before the first retry of a failed batch, and between the first probes "
        "of a dependency that is down; doubles each time.",
    )
    max_backoff_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest pause between retries and probes (each pause is jittered down by up to half).",
    )

    @model_validator(mode="after")
    def _initial_within_max(self) -> RecoverySettings:
        if self.initial_backoff_s > self.max_backoff_s:
            raise ValueError(
                f"recovery.initial_backoff_s ({self.initial_backoff_s}) must not exceed recovery.max_backoff_s "
                f"({self.max_backoff_s})"
            )
        return self


class IngestSettings(Section):
    """The live connectors: which sources, where their memory and page archive live."""

    sources_file: Path = Field(
        Path(__file__).resolve().parents[1] / "connectors" / "default_sources.yaml",
        description="The sources.yaml to ingest (default: the shipped list of public news feeds).",
    )
    state_file: Path = Field(Path(".newswire/state/connectors.sqlite3"), description="Seen entries and validators.")
    archive_dir: Path = Field(Path(".newswire/archive"), description="WARC files of every fetched page.")
    archive_max_file_bytes: int = Field(100_000_000, ge=1_000, description="A WARC file is rolled past this size.")
    fetch_group: str = Field("newswire-fetchers", description="Consumer group of the page-fetch workers.")
    fetch_workers: int = Field(1, ge=1, le=64, description="Page-fetch worker processes.")
    min_article_words: int = Field(80, ge=1, description="Pages with less text are 'not an article'.")
    max_child_sitemaps: int = Field(50, ge=0, description="Child sitemaps followed per sitemap index per poll.")
    max_entries_per_poll: int = Field(1_000, ge=1, description="New entries queued per source per poll.")
    date_disagreement_s: float = Field(86_400.0, ge=0, description="Feed vs page date gap that flags an article.")
    future_date_tolerance_s: float = Field(
        21_600.0,
        ge=0,
        description="A publication time more than this after the fetch is not trusted: the article is flagged "
        "and dated by the page, else the feed, else the fetch time.",
    )
    # Retries of transient failures (timeouts, connection errors, DNS, 429, 5xx), held in the
    # persistent schedule beside state_file so that a restart keeps them.
    retry_max_attempts: int = Field(
        6,
        ge=1,
        description="Fetches of one page ending in a transient failure before it is dead-lettered gave_up "
        "(each fetch may itself make fetch.max_retries quick retries).",
    )
    retry_max_age_s: float = Field(
        86_400.0, gt=0, description="Longest a page is retried, from when it was queued, before it is gave_up."
    )
    retry_backoff_s: float = Field(
        30.0, gt=0, description="Wait before the first retry of a page or a failed poll; doubles per failure."
    )
    retry_backoff_max_s: float = Field(3_600.0, gt=0, description="Longest wait between two retries (before jitter).")
    retry_jitter: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of each backoff drawn at random (0.5: between half and the whole), so hosts that "
        "failed together do not all come back together.",
    )
    retry_after_max_s: float = Field(
        3_600.0, gt=0, description="A publisher's Retry-After is honoured up to this wait; a longer one is cut to it."
    )
    max_task_deliveries: int = Field(
        3,
        ge=1,
        description="Times a fetch task may be handed to a worker that dies before finishing it; then it is "
        "dead-lettered worker_crashed instead of crash-looping.",
    )
    poll_gave_up_after: int = Field(
        6,
        ge=1,
        description="Consecutive failed polls of a source before one gave_up dead letter says so (polling goes on, "
        "backed off up to retry_backoff_max_s).",
    )
    schedule_check_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often due retries and due polls are looked for."
    )
    max_host_wait_s: float = Field(
        60.0,
        ge=0,
        description="Longest a fetch or poll waits for its host's turn (politeness, Crawl-delay, a Retry-After "
        "another page was given); a longer wait is rescheduled, at no attempt's cost, so that one held-back "
        "host never holds up a worker's other hosts.",
    )
    fetch_session_timeout_s: float = Field(
        15.0,
        ge=6,
        le=300,
        description="How soon the broker notices a fetch worker died, and hands its partitions (its hosts' "
        "tasks) to another worker; the broker's group.min.session.timeout.ms (6 s) is the floor.",
    )


class ObservabilitySettings(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_port: int = Field(9464, ge=0, le=65535, description="Pipeline's Prometheus /metrics; 0 disables it.")
    ingest_metrics_port: int = Field(
        9465, ge=0, le=65535, description="Ingest service's Prometheus /metrics; 0 disables it."
    )
    metrics_host: str = "127.0.0.1"
    probe_interval_s: float = Field(
        5.0, gt=0, description="How often /readyz probes re-check the broker, sinks and index."
    )
    lag_interval_s: float = Field(5.0, gt=0, description="How often the pipeline measures its consumer lag.")
    console_host: str = Field("127.0.0.1", description="Address the console binds; loopback unless set otherwise.")
    console_port: int = Field(8464, ge=0, le=65535, description="The console's web port; 0 picks a free one.")
    console_pipeline_metrics_url: str | None = Field(
        None, description="The pipeline's /metrics the console charts; unset means metrics_host:metrics_port."
    )
    console_ingest_metrics_url: str | None = Field(
        None, description="The ingest service's /metrics; unset means metrics_host:ingest_metrics_port."
    )
    console_sample_interval_s: float = Field(
        5.0, gt=0, description="How often the console samples the services' metrics for its charts (kept 1 hour)."
    )
    console_backlog: int = Field(
        2_000,
        ge=1,
        description="Newest records per partition the console keeps of the dead-letter, duplicates, enriched topics.",
    )
    console_silent_factor: float = Field(
        3.0, gt=1, description="A source with no article for this many poll intervals is shown (and alerted) silent."
    )


class QualitySettings(Section):
    """Per-source quality drift (pipeline.quality.drift): the windows and the statistical rule."""

    state_file: Path = Field(
        Path(".newswire/state/quality.sqlite3"), description="Each source's window and baseline, kept across restarts."
    )
    consumer_group: str = Field("newswire-quality", description="Consumer group of the quality monitor.")
    window: int = Field(30, ge=2, description="Pages per source in the sliding window that is judged.")
    baseline: int = Field(200, ge=2, description="Earlier pages per source the window is judged against.")
    min_window: int = Field(10, ge=1, description="Pages the window needs before a source is judged.")
    min_baseline: int = Field(20, ge=1, description="Pages the baseline needs before a source is judged.")
    z_threshold: float = Field(
        2.33, gt=0, description="One-sided two-proportion z above which a drop is significant (2.33: alpha 0.01)."
    )
    min_drop: float = Field(0.2, gt=0, le=1, description="Smallest drop of a share that can count as drift.")
    body_ratio: float = Field(
        0.5, gt=0, lt=1, description="The window's median body length below this share of the baseline's is drift."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    limits: LimitSettings = LimitSettings()
    broker: BrokerSettings = BrokerSettings()
    replay: ReplaySettings = ReplaySettings()
    sinks: SinkSettings = SinkSettings()
    pipeline: PipelineSettings = PipelineSettings()
    recovery: RecoverySettings = RecoverySettings()
    ingest: IngestSettings = IngestSettings()
    fetch: FetchSettings = FetchSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    quality: QualitySettings = QualitySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file_path()),
        )


def config_file_path() -> Path:
    return Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))


def load_settings() -> Settings:
    """Read the settings file and environment once; raises a readable error on bad values."""
    path = config_file_path()
    if CONFIG_FILE_ENV in os.environ and not path.is_file():
        raise FileNotFoundError(f"{CONFIG_FILE_ENV} names {path}, which is not a file")
    return Settings()
