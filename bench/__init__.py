"""Benchmarks, run on demand (`make bench`); they print figures and assert nothing."""
