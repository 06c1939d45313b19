"""The Beam pipeline: read the raw topic, decode, enrich, deduplicate, write to sinks.

One module per stage and one per sink; each stage is a composite PTransform usable on
its own in a test pipeline and indifferent to which source feeds it. Nothing here reads
the environment or keeps process-global state, so the same transforms run unchanged on
the local FnApiRunner (micro-batches) and on Flink or Dataflow (streaming).
The pipeline never imports connectors: they meet through Kafka and ``schemas``.
"""
