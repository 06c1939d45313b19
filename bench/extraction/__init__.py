"""Extraction benchmark: body, date and title recovery against public reference sets."""
