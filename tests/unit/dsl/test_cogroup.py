"""Cogroup: several grouped streams into one aggregate, one store, one changelog."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import (
    LongSerde,
    SessionWindows,
    StreamsBuilder,
    TopologyError,
    TumblingWindows,
    Windowed,
)
from streamer.serde import StringSerde
from streamer.testing import TopologyTestDriver


def _add_click(_user: str, _click: Any, agg: dict[str, int]) -> dict[str, int]:
    return {**agg, "clicks": agg["clicks"] + 1}


def _add_buy(_user: str, buy: dict[str, int], agg: dict[str, int]) -> dict[str, int]:
    return {**agg, "spent": agg["spent"] + buy["eur"]}


def activity() -> StreamsBuilder:
    """Clicks keyed by user; purchases keyed by order id, re-keyed by user."""
    b = StreamsBuilder()
    clicks = b.stream("clicks").group_by_key()
    buys = b.stream("buys").group_by(lambda _order, buy: buy["user"], name="buys-by-user")
    (
        clicks.cogroup(_add_click)
        .cogroup(buys, _add_buy)
        .aggregate(lambda: {"clicks": 0, "spent": 0}, name="activity")
        .to_stream()
        .to("activity")
    )
    return b


def test_every_input_updates_one_aggregate_in_arrival_order() -> None:
    with TopologyTestDriver(activity().build(), app_id="shop") as d:
        d.pipe("clicks", "u1", {"page": "home"}, timestamp=1)
        d.pipe("buys", "o-1", {"user": "u1", "eur": 5}, timestamp=2)
        d.pipe("buys", "o-2", {"user": "u2", "eur": 3}, timestamp=3)
        d.pipe("clicks", "u1", {"page": "cart"}, timestamp=4)
        assert d.read_key_values("activity") == [
            ("u1", {"clicks": 1, "spent": 0}),
            ("u1", {"clicks": 1, "spent": 5}),
            ("u2", {"clicks": 0, "spent": 3}),
            ("u1", {"clicks": 2, "spent": 5}),
        ]
        assert d.store("activity").get("u1") == {"clicks": 2, "spent": 5}
        changelog = d.read_key_values("shop-activity-changelog")
        assert [k for k, _ in changelog] == [b"u1", b"u1", b"u2", b"u1"]


def test_one_store_one_changelog_in_describe() -> None:
    topology = activity().build()
    text = topology.describe(app_id="shop")
    assert "Processor: activity-cogroup-0 [cogroup] input 0" in text
    assert "Processor: activity-cogroup-1 [cogroup] input 1" in text
    assert "Processor: activity [cogroup-aggregate] 2 inputs (stores: [activity])" in text
    assert [s.name for s in topology.stores] == ["activity"]
    assert "shop-buys-by-user-repartition (repartition)" in text
    # The clicks and the repartitioned purchases meet in one sub-topology: co-partitioned.
    sub = topology.subtopology_for("shop-buys-by-user-repartition", "shop")
    assert sub is not None
    assert {t.name for t in sub.source_topics} == {"clicks", "buys-by-user-repartition"}
    assert sub.copartition_groups


def test_inputs_must_be_co_partitioned() -> None:
    topology = activity().build()
    counts = {"clicks": 4, "shop-buys-by-user-repartition": 2}
    with pytest.raises(TopologyError, match="not co-partitioned"):
        topology.validate_partitions(counts, "shop")


def test_null_values_and_keys_are_skipped_and_counted() -> None:
    with TopologyTestDriver(activity().build()) as d:
        d.pipe("clicks", "u1", None)
        d.pipe("clicks", None, {"page": "x"})
        assert d.read_key_values("activity") == []
        assert d.counters() == {"null-key-or-value-skipped": 2, "records-dropped-null-key": 1}


def test_a_grouped_stream_joins_a_cogroup_once() -> None:
    b = StreamsBuilder()
    clicks = b.stream("clicks").group_by_key()
    start = clicks.cogroup(_add_click)
    with pytest.raises(TopologyError, match="already in this cogroup"):
        start.cogroup(clicks, _add_click)


def test_cogrouped_streams_share_a_key_serde() -> None:
    b = StreamsBuilder()
    clicks = b.stream("clicks").group_by_key()
    counts = b.stream("counts", key_serde=LongSerde()).group_by_key()
    with pytest.raises(TopologyError, match="share a key serde"):
        clicks.cogroup(_add_click).cogroup(counts, _add_click)


def test_windowed_cogroup_tumbling() -> None:
    b = StreamsBuilder()
    clicks = b.stream("clicks").group_by_key()
    buys = b.stream("buys").group_by_key()
    (
        clicks.cogroup(_add_click)
        .cogroup(buys, _add_buy)
        .windowed_by(TumblingWindows(size=10))
        .aggregate(lambda: {"clicks": 0, "spent": 0}, name="per-10ms", emit="final")
        .to_stream()
        .map(lambda w, agg: (w.key, [w.start, agg["clicks"], agg["spent"]]))
        .to("windows")
    )
    topology = b.build()
    assert "Processor: per-10ms-aggregate [windowed-aggregate] tumbling" in topology.describe()
    with TopologyTestDriver(topology) as d:
        d.pipe("clicks", "u1", {}, timestamp=1)
        d.pipe("buys", "u1", {"eur": 4}, timestamp=5)
        d.pipe("clicks", "u1", {}, timestamp=12)  # closes [0, 10)
        d.pipe("buys", "u1", {"eur": 1}, timestamp=3)  # late: counted, dropped
        d.pipe("clicks", "u2", {}, timestamp=25)  # closes [10, 20)
        assert d.read_key_values("windows") == [("u1", [0, 1, 4]), ("u1", [10, 1, 0])]
        assert d.counters() == {"late-records": 1}


def test_windowed_cogroup_sessions_need_a_merger() -> None:
    b = StreamsBuilder()
    left = b.stream("a").group_by_key().cogroup(lambda _k, _v, n: n + 1)
    both = left.cogroup(b.stream("b").group_by_key(), lambda _k, _v, n: n + 100)
    sessions = both.windowed_by(SessionWindows(gap=5))
    with pytest.raises(TopologyError, match="needs merger"):
        sessions.aggregate(lambda: 0, name="s")
    table = sessions.aggregate(lambda: 0, name="s2", merger=lambda _k, x, y: x + y)
    table.to_stream().to("out", key_serde=None)
    with TopologyTestDriver(b.build()) as d:
        d.pipe("a", "k", 1, timestamp=0)
        d.pipe("b", "k", 1, timestamp=4)
        out = d.read_key_values("out")
        assert out[-1] == (Windowed("k", 0, 4), 101)


# --- a reference model --------------------------------------------------------------------

Event = tuple[str, str, int]  # input ("clicks" or "buys"), user, amount

event = st.tuples(st.sampled_from(["clicks", "buys"]), st.sampled_from("uvw"), st.integers(0, 9))


def history_topology() -> StreamsBuilder:
    """Each user's history as ``[[input, amount], ...]``: order-sensitive on purpose."""
    b = StreamsBuilder()
    clicks = b.stream("clicks").group_by_key()
    buys = b.stream("buys").group_by(lambda _order, buy: buy["user"], name="by-user")
    (
        clicks.cogroup(lambda _u, amount, h: [*h, ["c", amount]])
        .cogroup(buys, lambda _u, buy, h: [*h, ["b", buy["eur"]]])
        .aggregate(list, name="history", value_serde=None)
        .to_stream()
        .to("history")
    )
    return b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event, max_size=30), partitions=st.sampled_from([1, 3]))
def test_cogroup_matches_a_model(events: list[Event], partitions: int) -> None:
    model: dict[str, list[list[Any]]] = {}
    counts = {"clicks": partitions, "buys": partitions, "app-by-user-repartition": partitions}
    with TopologyTestDriver(history_topology().build(), app_id="app", partitions=counts) as d:
        for n, (source, user, amount) in enumerate(events):
            if source == "clicks":
                d.pipe("clicks", user, amount, timestamp=n)
                model.setdefault(user, []).append(["c", amount])
            else:
                d.pipe("buys", f"order-{n}", {"user": user, "eur": amount}, timestamp=n)
                model.setdefault(user, []).append(["b", amount])
            assert d.read_key_values("history") == [(user, model[user])]
        stored = {}
        for p in range(partitions):
            stored.update(d.store("history", partition=p).items())
        assert stored == model
        key_serde = StringSerde()
        changelog = d.read_output("app-history-changelog", key_serde=key_serde)
        last = {r.key: r.value for r in changelog}
        assert set(last) == set(model)


def test_cogroup_on_rocksdb_stores(tmp_path: Any) -> None:
    with TopologyTestDriver(activity().build(), state="rocksdb", state_dir=tmp_path) as d:
        d.pipe("clicks", "u1", {}, timestamp=1)
        d.pipe("buys", "o-1", {"user": "u1", "eur": 5}, timestamp=2)
        assert d.store("activity").get("u1") == {"clicks": 1, "spent": 5}
