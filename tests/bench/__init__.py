"""Benchmarks, run by hand (``python -m tests.bench.bench_speed``); pytest does not collect them."""
