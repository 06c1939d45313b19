"""Drives the real `newswire` commands for one isolated deployment in a test."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState

from newswire import wiring
from newswire.settings import KafkaSettings, Settings
from newswire.tail import records_to_end
from newswire.topics import client_config, topic_offsets
from pipeline.graph import PipelineConfig, build_pipeline
from pipeline.kafka_io import PartitionRange, ReadFromKafka

REPO = Path(__file__).resolve().parents[2]


@dataclass
class NewswireRun:
    """One isolated newswire deployment: its own topics, consumer group, sinks and state."""

    env: dict[str, str]
    bootstrap: str
    topics: Any
    output_dir: Path

    def command(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "newswire.cli", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"newswire {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def start(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """The command running; its output on ``stdout``, or in ``log`` for long runs (a pipe
        nobody reads until the end fills up and blocks the command)."""
        with log.open("w") if log else contextlib.nullcontext() as output:
            return subprocess.Popen(
                [sys.executable, "-m", "newswire.cli", *args],
                cwd=REPO,
                env=self.env,
                stdout=output or subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def sqlite_rows(self, query: str = "SELECT article_id FROM articles") -> list[tuple[Any, ...]]:
        path = self.output_dir / "articles.sqlite3"
        if not path.exists():
            return []
        with sqlite3.connect(path) as db:
            try:
                return db.execute(query).fetchall()
            except sqlite3.OperationalError:
                return []  # table not created yet

    def wait_for_sqlite_rows(self, pipeline: subprocess.Popen[str], at_least: int, *, timeout_s: float) -> None:
        """Until the SQLite sink holds ``at_least`` articles; fails if ``pipeline`` exits or stalls first."""
        deadline = time.monotonic() + timeout_s
        while len(self.sqlite_rows()) < at_least:
            assert pipeline.poll() is None, (
                f"pipeline exited early:\n{pipeline.stdout.read() if pipeline.stdout else ''}"
            )
            assert time.monotonic() < deadline, "pipeline made no progress"
            time.sleep(0.05)

    def jsonl_lines(self) -> list[str]:
        path = self.output_dir / "articles.jsonl"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def topic_values(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        """Every record of ``topic`` (key, value), read from the beginning to the current end."""
        return [(m.key, m.value) for m in records_to_end(KafkaSettings(bootstrap_servers=self.bootstrap), topic)]


def run_graph_over_raw(settings: Settings, config: PipelineConfig | None = None) -> None:
    """``build_pipeline`` once over every record on the raw topic, as a batch of the service runs
    it but with no offset commit after it; ``config`` defaults to the one ``settings`` give."""
    raw = settings.topics.raw
    ranges = [PartitionRange(raw, p, 0, end) for p, end in topic_offsets(settings.kafka, raw).items() if end]
    with wiring.JobServers() as job_servers:
        pipeline = beam.Pipeline(options=PipelineOptions(wiring.beam_args(settings, job_servers)))
        source = ReadFromKafka(client_config(settings.kafka), ranges)
        build_pipeline(pipeline, source, config or wiring.pipeline_config(settings))
        assert pipeline.run().wait_until_finish() == PipelineState.DONE
