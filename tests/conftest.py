"""Fixtures shared by every test: the real local Kafka broker, started once per session in a
temporary home on free ports, and a fresh set of uniquely named topics per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from newswire.broker import BrokerInfo, LocalBroker
from newswire.settings import BrokerSettings, KafkaSettings, Settings, TopicSettings
from newswire.testing.http_server import LoopbackServer
from newswire.testing.postgres import PostgresServer, postgres_cluster
from newswire.topics import ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's own jar cache, wherever pytest runs from: Kafka is downloaded once per checkout.
JAR_CACHE = REPO_ROOT / BrokerSettings().cache_dir


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the real local Kafka broker (the kafka_broker fixture)")


@dataclass(frozen=True)
class KafkaBroker:
    """The session's broker: where it listens, and settings that point every component at it."""

    bootstrap: str
    settings: Settings
    info: BrokerInfo


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker_settings = BrokerSettings(
        home=tmp_path_factory.mktemp("kafka-broker"), cache_dir=JAR_CACHE, port=0, controller_port=0
    )
    topic_defaults = TopicSettings()
    broker = LocalBroker(broker_settings, topic_defaults)
    info = broker.start()
    try:
        settings = Settings(
            kafka=KafkaSettings(bootstrap_servers=info.bootstrap, client_id="newswire-tests"),
            topics=topic_defaults,
            # Pinned to the ports it got, so a test that restarts the broker keeps its bootstrap address.
            broker=broker_settings.model_copy(update={"port": info.port, "controller_port": info.controller_port}),
        )
        yield KafkaBroker(bootstrap=info.bootstrap, settings=settings, info=info)
    finally:
        broker.stop()


@pytest.fixture
def topics(kafka_broker: KafkaBroker) -> TopicSettings:
    """All of newswire's topics under a prefix no other test uses, created on the session broker."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    names = TopicSettings(
        raw=f"{prefix}.articles.raw",
        enriched=f"{prefix}.articles.enriched",
        duplicates=f"{prefix}.articles.duplicates",
        dead_letter=f"{prefix}.dead-letter",
        fetch_tasks=f"{prefix}.fetch-tasks",
    )
    ensure_topics(kafka_broker.settings.kafka, names)
    return names


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """The loopback HTTP server, for every test that fetches."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real throwaway PostgreSQL for the PostgreSQL sink; each test takes a fresh database."""
    with postgres_cluster() as server:
        yield server
