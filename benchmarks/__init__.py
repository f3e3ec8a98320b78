"""Benchmarks against a real local Kafka broker: ``./scripts/bench`` or ``python -m benchmarks``.

See docs/benchmarks.md for what is measured and the latest results.
"""
