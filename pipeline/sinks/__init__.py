"""Sinks: each one module behind the ``Sink`` contract in ``base``."""
