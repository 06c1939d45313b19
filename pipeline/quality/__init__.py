"""Per-source quality of what the pipeline publishes: field completeness, body length and
dead-letter shares over a sliding window, judged against each source's own history
(``drift``), and the monitor that feeds it from the enriched and dead-letter topics
(``monitor``)."""
