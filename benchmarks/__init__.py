"""Benchmarks against a real local Kafka broker. Run: python -m benchmarks.runtime."""
