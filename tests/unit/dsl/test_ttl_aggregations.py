"""Aggregations with a time to live: keys not updated for ``ttl`` ms of stream time expire.

A reference model replays random updates (several keys, out-of-order timestamps, None
values) with the documented rules and must agree with the driver on every forwarded record,
on the store's live contents, on its raw rows (one primary and one index row per key), and on
the changelog, whose replay must give the store's rows exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer import StreamsBuilder, TopologyError
from streamer.processors import ttl as ttl_processors
from streamer.serde import LongSerde, StringSerde
from streamer.state import MemoryStore
from streamer.state.ttl import TtlKeyValueStore
from streamer.testing import TopologyTestDriver

Event = tuple[str, int | None, int]  # key, value, timestamp
Fold = Callable[[str, int, Any], Any]

FOLDS: dict[str, Fold] = {
    "count": lambda _k, _v, cur: 1 if cur is None else cur + 1,
    "aggregate": lambda _k, v, cur: [v] if cur is None else [*cur, v],
    "reduce": lambda _k, v, cur: v if cur is None else max(cur, v),
}


def topology(kind: str, ttl: int) -> StreamsBuilder:
    b = StreamsBuilder()
    grouped = b.stream("in").group_by_key()
    if kind == "count":
        table = grouped.count(name="agg", ttl=ttl)
    elif kind == "aggregate":
        table = grouped.aggregate(list, lambda _k, v, a: [*a, v], name="agg", ttl=ttl)
    else:
        table = grouped.reduce(max, name="agg", ttl=ttl)
    table.to_stream().to("out")
    return b


class Model:
    """The documented semantics, computed without an index: every rule in one place."""

    def __init__(self, ttl: int, limit: int, fold: Fold) -> None:
        self.ttl, self.limit, self.fold = ttl, limit, fold
        self.time = -1
        self.rows: dict[str, tuple[Any, int]] = {}  # key -> (value, updated_at)

    def step(self, key: str, value: int | None, ts: int) -> list[tuple[str, Any, int]]:
        out: list[tuple[str, Any, int]] = []
        self.time = max(self.time, ts)
        expired = sorted(
            (updated, k.encode(), k)
            for k, (_, updated) in self.rows.items()
            if updated + self.ttl <= self.time
        )
        for updated, _, k in expired[: self.limit]:
            del self.rows[k]
            out.append((k, None, updated + self.ttl))
        if value is None:
            return out
        current = None
        if key in self.rows:
            old, updated = self.rows[key]
            if updated + self.ttl > self.time:
                current = old
            else:
                out.append((key, None, updated + self.ttl))
        new = self.fold(key, value, current)
        self.rows[key] = (new, self.time)
        out.append((key, new, ts))
        return out

    def live(self) -> dict[str, Any]:
        return {k: v for k, (v, u) in self.rows.items() if u + self.ttl > self.time}


@st.composite
def updates(draw: st.DrawFn) -> list[Event]:
    """A few keys, timestamps mostly rising with jumps past the TTL and some pulled back."""
    out: list[Event] = []
    base = 0
    for _ in range(draw(st.integers(0, 40))):
        base += draw(st.sampled_from([0, 1, 3, 7, 15, 40]))
        ts = max(0, base - draw(st.sampled_from([0, 0, 0, 5, 30])))
        value = draw(st.one_of(st.none(), st.integers(0, 9))) if draw(st.booleans()) else 1
        out.append((draw(st.sampled_from(["a", "b", "c", "dd", "e"])), value, ts))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=updates(),
    ttl=st.sampled_from([1, 5, 10, 30]),
    limit=st.sampled_from([1, 2, 16]),
    kind=st.sampled_from(sorted(FOLDS)),
)
def test_ttl_aggregations_match_the_model(
    events: list[Event], ttl: int, limit: int, kind: str
) -> None:
    model = Model(ttl, limit, FOLDS[kind])
    with ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setattr(ttl_processors, "PURGE_PER_RECORD", limit)
        driver = stack.enter_context(TopologyTestDriver(topology(kind, ttl).build(), app_id="app"))
        for n, (key, value, ts) in enumerate(events):
            driver.pipe("in", key, value, timestamp=ts)
            got = [(r.key, r.value, r.timestamp) for r in driver.read_output("out")]
            assert got == model.step(key, value, ts), f"after record {n}"
        store = driver.store("agg")
        assert dict(store.items()) == model.live()
        raw = dict(store.store.range(None, None))
        assert sorted(k for k in raw if k.startswith(b"k")) == sorted(
            b"k" + k.encode() for k in model.rows
        )
        assert len([k for k in raw if k.startswith(b"t")]) == len(model.rows)
        replayed: dict[bytes, bytes] = {}
        for record in driver.read_output("app-agg-changelog"):
            if record.value is None:
                replayed.pop(record.key, None)
            else:
                replayed[record.key] = record.value
        assert replayed == raw


def test_expired_keys_forward_tombstones_and_restart_from_scratch() -> None:
    with TopologyTestDriver(topology("count", 10).build(), app_id="app") as d:
        d.pipe("in", "x", 1, timestamp=0)
        d.pipe("in", "y", 1, timestamp=5)
        d.pipe("in", "x", 1, timestamp=9)  # x now expires at 19
        d.pipe("in", "z", 1, timestamp=15)  # y expired at 15
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("out")] == [
            ("x", 1, 0),
            ("y", 1, 5),
            ("x", 2, 9),
            ("y", None, 15),
            ("z", 1, 15),
        ]
        assert dict(d.store("agg").items()) == {"x": 2, "z": 1}
        d.pipe("in", "x", 1, timestamp=30)
        assert d.read_key_values("out") == [("x", None), ("z", None), ("x", 1)]
        assert d.store("agg").get("x") == 1
        assert d.store("agg").get("z") is None


def test_describe_shows_the_ttl_and_the_store_kind() -> None:
    text = topology("reduce", 60_000).build().describe(app_id="app")
    assert "Processor: agg [reduce] ttl=60000ms (stores: [agg])" in text
    assert "agg [key-value-ttl, ttl 60000 ms] changelog: app-agg-changelog" in text


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True])
def test_a_ttl_must_be_a_positive_int(ttl: Any) -> None:
    b = StreamsBuilder()
    with pytest.raises(TopologyError, match="ttl must be a positive int"):
        b.stream("in").group_by_key().count(name="n", ttl=ttl)


def test_a_joined_stream_sees_expired_rows_as_absent() -> None:
    b = StreamsBuilder()
    seen = b.stream("seen").group_by_key().reduce(lambda _a, v: v, name="last-seen", ttl=100)
    b.stream("lookups").left_join(seen, lambda q, s: [q, s], name="with-seen").to("answers")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("seen", "u1", "home", timestamp=0)
        d.pipe("lookups", "u1", "q1", timestamp=50)
        d.pipe("lookups", "u1", "q2", timestamp=100)  # expired: not purged yet, not visible
        assert d.read_values("answers") == [["q1", "home"], ["q2", None]]


def test_cogroup_aggregate_with_a_ttl() -> None:
    b = StreamsBuilder()
    a = b.stream("a").group_by_key()
    c = b.stream("c").group_by_key()
    a.cogroup(lambda _k, v, s: s + v).cogroup(c, lambda _k, v, s: s - v).aggregate(
        lambda: 0, name="net", ttl=10
    ).to_stream().to("out")
    with TopologyTestDriver(b.build()) as d:
        d.pipe("a", "k", 5, timestamp=0)
        d.pipe("c", "k", 2, timestamp=3)
        d.pipe("a", "j", 1, timestamp=13)  # k written at 3: expired at 13
        assert [(r.key, r.value, r.timestamp) for r in d.read_output("out")] == [
            ("k", 5, 0),
            ("k", 3, 3),
            ("k", None, 13),
            ("j", 1, 13),
        ]


def test_a_store_restored_from_its_changelog_expires_the_same_keys() -> None:
    """The index is changelogged: rows replayed into an empty store (as a restore does)
    keep expiring, oldest first, with the task's restored stream time."""
    with TopologyTestDriver(topology("count", 10).build(), app_id="app") as d:
        for key, ts in [("a", 0), ("b", 4), ("c", 8), ("a", 9), ("d", 12)]:
            d.pipe("in", key, 1, timestamp=ts)
        changelog = d.read_output("app-agg-changelog")
        live = dict(d.store("agg").items())
    restored = MemoryStore("agg")
    restored.write_batch([(r.key, r.value) for r in changelog])
    now = [12]
    view = TtlKeyValueStore(restored, StringSerde(), LongSerde(), 10, lambda: now[0])
    assert dict(view.items()) == live == {"a": 2, "b": 1, "c": 1, "d": 1}
    now[0] = 19
    assert view.purge_expired(16) == [("b", 4), ("c", 8), ("a", 9)]
    assert dict(view.items()) == {"d": 1}
    assert view.purge_expired(16) == []


def test_after_an_aborted_transaction_the_purge_starts_over() -> None:
    """Discarding the cache brings purged keys back; they must be purged again."""
    from streamer.state import CachingStore

    cache = CachingStore(MemoryStore("agg"))
    now = [0]
    view = TtlKeyValueStore(cache, StringSerde(), LongSerde(), 10, lambda: now[0])
    view.put("a", 1)
    view.put("b", 2)
    cache.commit()
    now[0] = 20
    assert view.purge_expired(16) == [("a", 0), ("b", 0)]
    cache.discard()  # the transaction that purged them aborted
    assert view.purge_expired(16) == [("a", 0), ("b", 0)]
    assert list(cache.range(None, None)) == []
