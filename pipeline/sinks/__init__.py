"""Sinks: each one module behind the ``Sink`` contract in ``base``.

This package module imports no sink (nor Beam): the settings read the rules below when they
load, and must stay light.
"""

# The one rule for the PostgreSQL sink's table name: the sink refuses any other, and the
# settings validate ``sinks.postgres_table`` against the same pattern. Short enough that the
# "_by_published" index and "_withdrawn" table beside it stay within PostgreSQL's 63
# characters (63 - len("_by_published") = 50), which it would otherwise truncate silently.
POSTGRES_TABLE_NAME = r"^[a-z_][a-z0-9_]{0,49}$"
POSTGRES_TABLE_NAME_RULE = "a lower-case SQL identifier ([a-z_][a-z0-9_]*) of at most 50 characters"
