"""Benchmarks and evaluation harnesses; each prints its figures and a same-run baseline."""
