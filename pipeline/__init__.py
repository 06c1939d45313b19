"""The Beam pipeline: read the raw topic, decode, deduplicate, enrich the originals, write to sinks.

One module per stage and one per sink; each stage is a composite PTransform usable on
its own in a test pipeline and indifferent to which source feeds it. Nothing here reads
the environment or keeps process-global state that a record can change, so the same
transforms run unchanged on the local FnApiRunner (micro-batches) and on Flink or Dataflow
(streaming).

The one exception, and its bounds: three tables of installed or shipped data,
``StopWords.load``, ``PlaceGazetteer.load`` (the place table shipped beside it) and the
language model of ``pipeline.enrichers.language``, are cached per worker process and shared
by the enrichers in it (loading them costs seconds, three enrichers read the first two, and
the local micro-batch service would otherwise load the model again for every batch). They are
never changed after they are built, so no runner can tell whether it got a fresh one or a
shared one. Two small tables of this Python's Unicode data are kept the same way (the
word characters of ``pipeline.enrichers.word_runs`` and the gazetteer's case surprises).
``StopWords`` also remembers its last guess (one tuple, swapped whole, so a
thread never sees half of it); the guess is a pure function of the text, so the memo can
change how fast an answer comes, never which. Anything else shared must be a worker
resource (``pipeline.enrichers.base.worker_resource``).
The pipeline never imports connectors: they meet through Kafka and ``schemas``.
"""
