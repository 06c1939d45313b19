"""The chaos benchmark: does anything stop the service, lose an article or write one twice?

On this machine only (loopback): a private Kafka broker, a real PostgreSQL, and loopback
publishers (one address per host, feeds and sitemaps of real-looking article pages), with
the real `newswire ingest` and `newswire pipeline` processes under a supervisor. During the
run it writes about 1% poison of every kind straight to the raw topic, makes publishers
answer 429 with Retry-After, 503, time out and reset connections for a while, takes one host
down, SIGKILLs the pipeline twice and a fetch worker once, and stops the broker and
PostgreSQL for 20 s each. Then it reads every output back and prints: articles expected and
arrived in each sink, lost and doubled; each poison record's fate and its dead letters
(published, and distinct by ``dead_letter_id``); retries per host and Retry-After kept,
measured at the servers; the longest stall; every service exit; the wall time; and the
targets with PASS/FAIL. It exits non-zero when a target fails.

It measures and reports; it never tunes the service or assumes a result. Every wait has a
deadline and every process it starts is stopped before it returns.

    python -m bench.chaos [--articles 10000] [--hosts 20] [--no-outages] [--pipeline-kills 2]
"""
