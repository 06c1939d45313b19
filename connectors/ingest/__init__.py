"""The live ingest service: poll sources, queue page fetches by host, fetch, clean, publish.

Two roles meet through the fetch-task topic. The poller (``poller``) polls each due feed or
sitemap and queues each new entry as a ``FeedEntry`` keyed by its host; fetch workers
(``worker``, a consumer group of one or many processes) take those tasks, fetch and judge
the page (``fetcher``) and publish a ``CleanedArticle`` or a dead letter saying why not.
Transient failures are retried on a persistent schedule (``schedule``); ``service`` runs it
all as one object, ``IngestService.run(stop)``.
"""

from connectors.ingest.config import IngestConfig, RetryPolicy
from connectors.ingest.fetcher import PageFetcher
from connectors.ingest.poller import FeedSource, PageSource, Poller, PollReport
from connectors.ingest.schedule import Schedule, entry_key
from connectors.ingest.service import IngestReport, IngestService, IngestStatus, fetch_worker_process
from connectors.ingest.worker import FetchEvent, FetchWorker, OutcomeCounts, TasksDrained

__all__ = [
    "FeedSource",
    "FetchEvent",
    "FetchWorker",
    "IngestConfig",
    "IngestReport",
    "IngestService",
    "IngestStatus",
    "OutcomeCounts",
    "PageFetcher",
    "PageSource",
    "PollReport",
    "Poller",
    "RetryPolicy",
    "Schedule",
    "TasksDrained",
    "entry_key",
    "fetch_worker_process",
]
