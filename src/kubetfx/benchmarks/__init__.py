"""Benchmark scripts: each prints figures side by side with a baseline from the same run."""
