"""Fixtures for the dedup tests that need a shared index server; import the fixture where used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newswire.testing.redis import RedisServer, redis_server


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server
