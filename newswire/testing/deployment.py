"""A private newswire deployment for the benchmarks and the integration tests: a throwaway
local broker, topics no other run shares, and the environment that points a `newswire`
command at them.

Each run gets its own topics (and the caller its own state files and consumer group) so
that one run's articles never reach another's dedup index or sinks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newswire.broker import LocalBroker
from newswire.settings import ENV_PREFIX, BrokerSettings, TopicSettings

REPO = Path(__file__).resolve().parents[2]


def private_broker(work: Path, *, port: int = 0, controller_port: int = 0) -> LocalBroker:
    """A broker under ``work`` on a free port, not yet started; Kafka's jars come from the repo's cache.

    Give the ports a first start got to restart the same broker where its clients look for it."""
    return LocalBroker(
        BrokerSettings(
            home=work / "broker", port=port, controller_port=controller_port, cache_dir=REPO / ".newswire" / "cache"
        ),
        TopicSettings(),
    )


def run_topics(prefix: str, *, partitions: int = TopicSettings().partitions) -> TopicSettings:
    """All of newswire's topics, named ``<prefix>.raw``, ``<prefix>.enriched`` and so on."""
    return TopicSettings(
        raw=f"{prefix}.raw",
        enriched=f"{prefix}.enriched",
        duplicates=f"{prefix}.duplicates",
        dead_letter=f"{prefix}.dead",
        fetch_tasks=f"{prefix}.fetch",
        partitions=partitions,
    )


def newswire_environment(bootstrap: str, topics: TopicSettings, settings: dict[str, str]) -> dict[str, str]:
    """This process's environment for a `newswire` child process: the broker and topics, then
    ``settings`` (``NEWSWIRE_*`` variables); none of this process's own ``NEWSWIRE_*`` leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "NEWSWIRE_TOPICS__RAW": topics.raw,
            "NEWSWIRE_TOPICS__ENRICHED": topics.enriched,
            "NEWSWIRE_TOPICS__DUPLICATES": topics.duplicates,
            "NEWSWIRE_TOPICS__DEAD_LETTER": topics.dead_letter,
            "NEWSWIRE_TOPICS__FETCH_TASKS": topics.fetch_tasks,
            "NEWSWIRE_TOPICS__PARTITIONS": str(topics.partitions),
            **settings,
        }
    )
    return env


@contextmanager
def python_worker_pool(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Beam's Python worker pool (what an EXTERNAL environment points at) on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The pool starts each worker as plain `python`: it must find this interpreter first.
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    with log_path.open("wb") as log:
        pool = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its workers are its children: stop them together
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if pool.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Python worker pool did not start; see {log_path}")
            time.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=30)
