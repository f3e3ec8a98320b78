"""Table.group_by against a reference model: final aggregates come from the final table.

Random updates, group changes and deletions of a few rows, over several partitions (so the
changes of one row may cross tasks), must leave every group's count, sum and reduced sum
equal to those computed directly from the table's final rows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import StreamsBuilder
from streamer.testing import TopologyTestDriver
from streamer.testing.driver import default_partition

ROWS = [f"row-{n}" for n in range(6)]
GROUPS = ["g0", "g1", "g2", "g3"]

row_values = st.one_of(
    st.none(),  # a deletion
    st.fixed_dictionaries(
        {"group": st.sampled_from([*GROUPS, None]), "amount": st.integers(-50, 50)}
    ),
)
updates = st.lists(st.tuples(st.sampled_from(ROWS), row_values), max_size=40)


def _select(_row: Any, value: Any) -> tuple[Any, Any]:
    return value["group"], value["amount"]


def _topology() -> StreamsBuilder:
    builder = StreamsBuilder()
    grouped = builder.table("rows").group_by(_select, name="by-group")
    grouped.count(name="count")
    grouped.aggregate(
        lambda: 0,
        lambda _g, amount, total: total + amount,
        lambda _g, amount, total: total - amount,
        name="sum",
    )
    grouped.reduce(
        lambda total, amount: total + amount, lambda total, amount: total - amount, name="reduced"
    )
    return builder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(updates=updates, partitions=st.integers(1, 3))
def test_group_aggregates_match_the_final_table(
    updates: list[tuple[str, dict[str, Any] | None]], partitions: int
) -> None:
    table: dict[str, dict[str, Any]] = {}
    ever_grouped: set[str] = set()
    with TopologyTestDriver(_topology().build(), partitions={"rows": partitions}) as driver:
        for timestamp, (row, value) in enumerate(updates):
            driver.pipe("rows", row, value, timestamp=timestamp)
            if value is None:
                table.pop(row, None)
            else:
                table[row] = value
                if value["group"] is not None:
                    ever_grouped.add(value["group"])
        members: dict[str, list[int]] = {group: [] for group in ever_grouped}
        for value in table.values():
            if value["group"] is not None:
                members[value["group"]].append(value["amount"])
        for group in GROUPS:
            # The repartition topic has the input's partitions: a group lives in one task.
            owner = default_partition(group.encode(), partitions)
            expected = members.get(group)
            if expected is None:
                for store in ("count", "sum", "reduced"):
                    assert driver.store(store, partition=owner).get(group) is None, (store, group)
                continue
            assert driver.store("count", partition=owner).get(group) == len(expected), group
            assert driver.store("sum", partition=owner).get(group) == sum(expected), group
            assert driver.store("reduced", partition=owner).get(group) == sum(expected), group
