"""Property: with a topic extractor and a custom partitioner, every record lands in exactly
the topic and partition they say, or in the dead-letter topic if the extractor picks an
undeclared topic; none is lost or duplicated, and each topic keeps the input order. A
repartition with the same partitioner hands each record to the task of that partition."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamer import Processor, Record, RecordContext, StreamsBuilder
from streamer.testing import TopologyTestDriver

DECLARED = ("out-a", "out-b", "out-c")
PICKS = (*DECLARED, "out-undeclared")
REPARTITION = "test-app-spread-repartition"


def extract(_key: str, value: dict[str, Any], _context: RecordContext) -> str:
    return str(value["to"])


def partition(key: str, value: dict[str, Any], count: int) -> int:
    return (len(key) * 31 + int(value["n"])) % count


class TagWithTask(Processor):
    """Forwards each record with the partition of the task that processed it."""

    def process(self, record: Record) -> None:
        self.context.forward(record.with_value([record.value["seq"], self.context.partition]))


def topology() -> Any:
    builder = StreamsBuilder()
    orders = builder.stream("in")
    orders.to(extract, topics=list(DECLARED), partitioner=partition, name="route")
    (
        orders.repartition(name="spread", partitioner=partition)
        .process(TagWithTask, name="tag", keeps_key=True)
        .to("tagged")
    )
    return builder.build()


records = st.lists(
    st.tuples(st.text(max_size=12), st.sampled_from(PICKS), st.integers(0, 10**6)),
    max_size=40,
)
counts = st.fixed_dictionaries({t: st.integers(1, 6) for t in (*DECLARED, REPARTITION)})


@settings(max_examples=60, deadline=None)
@given(records=records, partitions=counts)
def test_every_record_lands_where_extractor_and_partitioner_say(
    records: list[tuple[str, str, int]], partitions: dict[str, int]
) -> None:
    expected: dict[str, list[tuple[int, int]]] = {t: [] for t in (*DECLARED, "tagged")}
    dead: list[int] = []
    for seq, (key, to, n) in enumerate(records):
        value = {"to": to, "n": n, "seq": seq}
        if to not in DECLARED:
            dead.append(seq)  # the sink fails first: the repartition branch never sees it
            continue
        expected[to].append((seq, partition(key, value, partitions[to])))
        expected["tagged"].append((seq, partition(key, value, partitions[REPARTITION])))

    driver = TopologyTestDriver(topology(), partitions=partitions, error_policy="dead-letter")
    with driver:
        for seq, (key, to, n) in enumerate(records):
            driver.pipe("in", key, {"to": to, "n": n, "seq": seq}, timestamp=seq)
        landed = {
            t: [(r.value["seq"], r.partition) for r in driver.read_output(t)] for t in DECLARED
        }
        landed["tagged"] = [tuple(r.value) for r in driver.read_output("tagged")]
        dlq = driver.read_output("test-app-dlq")
        assert set(driver.output_topics()) <= {REPARTITION}

    assert landed == expected
    assert [int(dict(r.headers)["streamer.source.offset"] or b"-1") for r in dlq] == dead
    total = sum(len(v) for t, v in landed.items() if t != "tagged") + len(dlq)
    assert total == len(records)
