"""Turning fetched or replayed text into clean article text.

Every repair here is general: it is keyed to the shape of a defect, never to a host,
a page or a benchmark file.
"""
