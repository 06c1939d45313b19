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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connectors.http.limits import FetchSettings

ENV_PREFIX = "NEWSWIRE_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "NEWSWIRE_CONFIG"
DEFAULT_CONFIG_FILE = Path("newswire.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(Section):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers.")
    client_id: str = "newswire"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    request_timeout_ms: int = Field(30_000, ge=1_000)
    max_message_bytes: int = Field(
        1_048_576, ge=1_024, description="Largest record the producer sends (producer max_request_size)."
    )
    compression_type: Literal["gzip", "none"] = Field(
        "gzip", description="Producer compression; gzip needs no native library."
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
    seeds_dir: Path = Path("seeds")
    rate: float = Field(0.0, ge=0, description="Articles per second; 0 means as fast as possible.")
    max_file_bytes: int = Field(5_000_000, ge=1, description="Seed files larger than this are rejected.")


class SinkSettings(Section):
    enabled: tuple[Literal["sqlite", "jsonl", "postgres", "parquet"], ...] = Field(
        ("sqlite", "jsonl"), description="Sinks the pipeline writes to, besides Kafka."
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
        "articles", pattern=r"^[a-z_][a-z0-9_]{0,55}$", description="Table the PostgreSQL sink upserts into."
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
    dedup_stories: bool = Field(True, description="Give each article a story_id.")
    max_record_bytes: int = Field(
        2_000_000, ge=1, description="Raw records larger than this are dead-lettered, not decoded."
    )
    enrichers: tuple[
        Literal["text_stats", "language", "entities", "keywords", "summary", "countries", "dateline"], ...
    ] = Field(
        # entities, keywords and summary cost ~0.3 ms each per article in pure Python; with them
        # on, the throughput benchmark fell below half of its no-enricher rate (0.40, and 0.48
        # without keywords and summary), so they are opt-in.
        ("text_stats", "language", "countries", "dateline"),
        description="Enrichers to run, in order. Also available: entities, keywords, summary.",
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
        description="Parallel instances of every stage (Flink task slots, Dataflow's worker ceiling, the local "
        "FnApiRunner's worker processes); unset keeps the runner's default, and on the FnApiRunner means one worker "
        "process per local core. Size it to the raw topic's partitions: more idles, fewer serialises them.",
    )
    parallel_min_records: int = Field(
        2_000,
        ge=1,
        description="FnApiRunner: a micro-batch of fewer records runs in the service's own process; starting worker "
        "processes costs seconds, more than a small batch's work. Larger batches use `parallelism` processes.",
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
        "reaches); unset means flink-checkpoints/ beside the dedup index.",
    )
    streaming_window_s: float = Field(
        2.0, gt=0, description="Streaming: window before the dedup GroupByKeys; results leave once it closes."
    )
    watermark_lag_s: float = Field(
        1.0, ge=0, description="Streaming: how far the watermark trails the readers' clocks (skew between workers)."
    )


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


class ObservabilitySettings(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_port: int = Field(9464, ge=0, le=65535, description="Pipeline's Prometheus /metrics; 0 disables it.")
    ingest_metrics_port: int = Field(
        9465, ge=0, le=65535, description="Ingest service's Prometheus /metrics; 0 disables it."
    )
    metrics_host: str = "127.0.0.1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    broker: BrokerSettings = BrokerSettings()
    replay: ReplaySettings = ReplaySettings()
    sinks: SinkSettings = SinkSettings()
    pipeline: PipelineSettings = PipelineSettings()
    ingest: IngestSettings = IngestSettings()
    fetch: FetchSettings = FetchSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

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
