"""Real local services for tests and benchmarks, in the one place both use.

A loopback HTTP server (``http_server``), a throwaway PostgreSQL (``postgres``) and Redis
(``redis``), a private broker and the environment of an isolated deployment
(``deployment``), and generated seed articles (``corpus``). Nothing here is a mock: each
starts the real program on a free loopback port and removes what it made on exit. It must
never listen anywhere but loopback, and nothing in ``pipeline`` or ``connectors`` imports it.
"""
