"""Sinks: each one module behind the ``Sink`` contract in ``base``, chosen by name.

``SINKS`` is the one list of them: the settings' allowed names, the shell's wiring and the
tests that run over every sink all read it. This package module imports no sink (nor Beam):
the settings read it, and the rules below, when they load, and must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.registry import Registered, Registry

if TYPE_CHECKING:
    from pipeline.sinks.base import Sink

# The one rule for the PostgreSQL sink's table name: the sink refuses any other, and the
# settings validate ``sinks.postgres_table`` against the same pattern. Short enough that the
# "_by_published" index and "_withdrawn" table beside it stay within PostgreSQL's 63
# characters (63 - len("_by_published") = 50), which it would otherwise truncate silently.
POSTGRES_TABLE_NAME = r"^[a-z_][a-z0-9_]{0,49}$"
POSTGRES_TABLE_NAME_RULE = "a lower-case SQL identifier ([a-z_][a-z0-9_]*) of at most 50 characters"

# Arguments are named by the SinkSettings field (or property) they are read from.
SINKS: Registry[Sink] = Registry(
    "sinks",
    [
        Registered("sqlite", "pipeline.sinks.sqlite:SqliteSink", {"path": "sqlite_path"}, "a queryable SQLite file"),
        Registered("jsonl", "pipeline.sinks.jsonl:JsonLinesSink", {"path": "jsonl_path"}, "a JSON Lines file"),
        Registered(
            "postgres",
            "pipeline.sinks.postgres:PostgresSink",
            {"dsn": "postgres_dsn", "password": "postgres_password", "table": "postgres_table"},
            "a PostgreSQL table",
        ),
        Registered(
            "parquet",
            "pipeline.sinks.parquet:ParquetSink",
            {
                "root": "parquet_path",
                "roll_bytes": "parquet_roll_bytes",
                "roll_interval_s": "parquet_roll_interval_s",
                "compression": "parquet_compression",
            },
            "a date-partitioned Parquet dataset",
        ),
    ],
)
