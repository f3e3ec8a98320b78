"""Fused stateless steps (streamer/runtime/fusion.py): same results, order and errors as
step-by-step processing, without a Record between the steps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.errors import ProcessingError, SerializationError
from streamer.processors import stateless
from streamer.processors.api import Processor, Record
from streamer.runtime import fusion
from streamer.testing import TopologyTestDriver


def test_a_chain_of_stateless_steps_gives_each_record_in_order() -> None:
    b = StreamsBuilder()
    (
        b.stream("in")
        .filter(lambda k, v: v % 2 == 0)
        .map_values(lambda v: v * 10)
        .map(lambda k, v: (k.upper(), v + 1))
        .flat_map_values(lambda v: [v, -v])
        .select_key(lambda k, v: f"{k}{v}")
        .to("out")
    )
    with TopologyTestDriver(b.build()) as d:
        for n in range(5):
            d.pipe("in", "k", n, timestamp=n)
        assert d.read_key_values("out") == [
            ("K1", 1),
            ("K-1", -1),
            ("K21", 21),
            ("K-21", -21),
            ("K41", 41),
            ("K-41", -41),
        ]


def test_a_fused_chain_builds_no_record_between_its_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []

    class CountedRecord(Record):
        __slots__ = ()

        def __init__(self, *args: Any) -> None:
            made.append(args)
            super().__init__(*args)

    for module in (fusion, stateless):
        monkeypatch.setattr(module, "Record", CountedRecord)
    b = StreamsBuilder()
    b.stream("in").filter(lambda k, v: True).map_values(lambda v: v + 1).peek(lambda k, v: None).to(
        "out"
    )
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=0)
        assert d.read_values("out") == [2]
    assert made == []


def test_the_failing_step_of_a_chain_is_named() -> None:
    b = StreamsBuilder()
    (
        b.stream("in")
        .map_values(lambda v: v + 1, name="plus")
        .map_values(lambda v: 1 / v, name="invert")
        .map_values(lambda v: v * 2, name="double")
        .to("out")
    )
    with TopologyTestDriver(b.build()) as d:
        with pytest.raises(ProcessingError) as info:
            d.pipe("in", "k", -1, timestamp=0)
        assert info.value.step == "invert"
        assert str(info.value).startswith("step 'invert' raised ZeroDivisionError")
        assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_serde_failure_inside_a_step_names_the_step() -> None:
    def fail(value: Any) -> Any:
        raise SerializationError("cannot read it")

    b = StreamsBuilder()
    b.stream("in").map_values(fail, name="parse").to("out")
    with TopologyTestDriver(b.build()) as d:
        with pytest.raises(ProcessingError) as info:
            d.pipe("in", "k", 1, timestamp=0)
        assert info.value.step == "parse"
        assert str(info.value).startswith("step 'parse': cannot read it")


def test_flat_map_forwards_each_pair_before_asking_for_the_next() -> None:
    seen: list[Any] = []

    def pairs(key: Any, value: Any) -> Iterator[tuple[Any, Any]]:
        yield key, 1
        seen.append("asked for the second")
        raise ValueError("no second pair")

    b = StreamsBuilder()
    b.stream("in").flat_map(pairs, name="explode").peek(lambda k, v: seen.append(v)).to("out")
    with TopologyTestDriver(b.build(), error_policy="skip") as d:
        d.pipe("in", "k", 0, timestamp=0)
        assert d.read_values("out") == [1]
        assert d.counters()["records-skipped"] == 1
    assert seen == [1, "asked for the second"]


def test_a_user_processor_between_fused_steps_gets_records() -> None:
    got: list[Record] = []

    class Keep(Processor):
        def process(self, record: Record) -> None:
            got.append(record)
            self.context.forward(record.with_value(record.value * 3))

    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: v + 1).process(Keep, name="keep").map_values(
        lambda v: v - 1
    ).to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("in", "k", 1, timestamp=7)
        assert d.read_values("out") == [5]
    assert [(r.key, r.value, r.timestamp) for r in got] == [("k", 2, 7)]


def test_only_the_exact_stateless_classes_are_fused() -> None:
    class Loud(stateless.PeekProcessor):
        pass

    assert fusion.is_fused(stateless.PeekProcessor(print))
    assert not fusion.is_fused(Loud(print))
