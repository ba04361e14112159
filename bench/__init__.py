"""Benchmarks of `background` against the alternatives: ``make bench`` (``python -m bench``)."""
