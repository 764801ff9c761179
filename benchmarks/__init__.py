"""Benchmark harnesses: each runs standalone (`python benchmarks/NAME.py`) and imports without side effects."""
