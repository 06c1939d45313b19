"""The dedup stage: keep the first copy of each article, report the others.

``transform`` is the Beam stage (``Deduplicate``); ``decide`` the pure decision about one
article given what the index remembers; ``signature`` the MinHash signatures and LSH band
keys; ``entries`` what the index stores and under which keys; ``index`` the memory that
outlives a batch (SQLite or Redis); ``explain`` why two articles were decided as they
were. This package never imports connectors, and nothing in it keeps state in the
process between bundles.
"""

from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation
from pipeline.dedup.transform import DUPLICATES, OLDER, ORIGINALS, Deduplicate, notice, revision_token, sign

__all__ = [
    "DUPLICATES",
    "OLDER",
    "ORIGINALS",
    "DedupConfig",
    "Deduplicate",
    "IndexLocation",
    "notice",
    "revision_token",
    "sign",
]
