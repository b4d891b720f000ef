"""Benchmarks for rollback-bot against baselines. Run: ``python -m bench``.

Not part of the test suite or CI: nothing here asserts on time; it prints a table and
writes bench/results.md.
"""
