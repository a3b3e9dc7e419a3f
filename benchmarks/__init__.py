"""Benchmarks: scripts that print figures (and write JSON); they pass or fail nothing."""
