"""`make bench`: Terapi's benchmarks: cold start, AWS calls, refresh burst, scale, load, cost.

They report and never gate: a missed target is printed as such and the run still exits 0; only a
benchmark that breaks exits non-zero. Nothing reaches beyond 127.0.0.1. See bench/RESULTS.md.
"""
