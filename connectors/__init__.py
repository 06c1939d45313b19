"""Sources of articles: each kind of source is one module; only the base publishes to Kafka.

Connectors never import the pipeline; they meet it only through Kafka topics and the
``schemas`` models.
"""
