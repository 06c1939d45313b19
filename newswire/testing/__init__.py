"""Real local services for tests and benchmarks, in the one place both use.

A loopback HTTP server (``http_server``), a throwaway PostgreSQL (``postgres``) and Redis
(``redis``), a private broker and the environment of an isolated deployment
(``deployment``), generated seed articles (``corpus``), and the labelled dedup corpus with
the runs that score the dedup stage on it (``dedup_corpus``, ``dedup_run``, ``dedup_kafka``:
the dedup tests assert on what ``bench.dedup`` prints, so both use these and neither
imports the other). Nothing here is a mock: each
starts the real program on a free loopback port and removes what it made on exit. It must
never listen anywhere but loopback, and nothing in ``pipeline`` or ``connectors`` imports it.
"""
