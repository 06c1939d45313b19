"""Drives the real `newswire` commands for one isolated deployment in a test."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

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

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "newswire.cli", *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
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

    def jsonl_lines(self) -> list[str]:
        path = self.output_dir / "articles.jsonl"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def topic_values(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        """Every record of ``topic`` (key, value), read from the beginning to the current end."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            records: list[tuple[bytes | None, bytes]] = []
            while any(consumer.position(p) < ends[p] for p in partitions):
                for messages in consumer.poll(timeout_ms=1000).values():
                    records.extend((m.key, m.value) for m in messages)
            return records
        finally:
            consumer.close()
