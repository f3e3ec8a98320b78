"""Test helpers for streamer applications: the in-memory TopologyTestDriver and a real
Kafka harness (:mod:`streamer.testing.kafka`)."""

from streamer.testing.driver import ManualClock, TestRecord, TopologyTestDriver

__all__ = ["ManualClock", "TestRecord", "TopologyTestDriver"]
