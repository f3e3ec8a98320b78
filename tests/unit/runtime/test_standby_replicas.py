"""Standby replicas: placement by rendezvous hashing, tailing changelogs into on-disk copies
with their positions, and the handover of an open copy to the task that takes it over."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from streamer import StreamsBuilder
from streamer.runtime.placement import host_of, range_successor, standby_members
from streamer.runtime.standby import StandbyReplicas
from streamer.state import BytesStore, RocksDBStore, open_store
from tests.unit.runtime.scripted import ScriptedGroupView, ScriptedKafka, ScriptedRestoreConsumer

APP = "app"
CHANGELOG = f"{APP}-counts-changelog"


def _topology():  # type: ignore[no-untyped-def]
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(name="counts").to_stream().to("out")
    return builder.build()


def _opener(path: Path, name: str) -> BytesStore:
    return open_store("rocksdb", name, path)


def test_a_host_is_a_slot_prefix() -> None:
    assert host_of("app-host-a-12") == "app-host-a-"
    assert host_of("app-0") == "app-"


def test_placement_skips_the_owners_host_and_spreads_copies_evenly() -> None:
    members = [f"app-h{h}-{n}" for h in range(4) for n in range(2)]
    held: Counter[str] = Counter()
    for task in range(400):
        owner = members[task % len(members)]
        chosen = standby_members(f"0_{task}", owner, members, 2)
        assert len(chosen) == 2
        assert len({host_of(m) for m in chosen}) == 2, "one copy per host"
        assert host_of(owner) not in {host_of(m) for m in chosen}
        assert chosen == standby_members(f"0_{task}", owner, reversed(members), 2)
        held.update(chosen)
    assert set(held) == set(members)
    assert max(held.values()) < 2 * min(held.values()), held


def test_the_first_copy_goes_where_the_range_assignor_sends_the_task() -> None:
    owners = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c"}
    # b leaves: a and c, in that order, split 0-5 into 0-2 and 3-5.
    assert [range_successor(owners, p, {"b"}) for p in (2, 3)] == ["a", "c"]
    assert [range_successor(owners, p, {"a"}) for p in (0, 1)] == ["b", "b"]
    assert [range_successor(owners, p, {"c"}) for p in (4, 5)] == ["b", "b"]
    assert range_successor({0: "a", 2: "b"}, 0, {"b"}) is None, "partition 1 is moving"
    members = ["app-h0-0", "app-h1-0", "app-h2-0"]
    chosen = standby_members("0_3", "app-h1-0", members, 2, successor="app-h2-0")
    assert chosen == ["app-h2-0", "app-h0-0"]
    assert standby_members("0_3", "app-h1-0", members, 1, successor="app-h2-0") == ["app-h2-0"]
    # A successor on the owner's host is no successor.
    assert standby_members("0_3", "app-h1-0", members, 1, successor="app-h1-1") != ["app-h1-1"]


def test_a_copy_tails_its_changelog_and_is_handed_over_open(tmp_path: Path) -> None:
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG, 2)
    for n in range(5):
        kafka.append(CHANGELOG, 1, f"k{n}".encode(), b"v")
    kafka.members = {"app-a-0": (("in", 0),), "app-b-0": (("in", 1),)}
    owned: set[str] = set()
    standbys = StandbyReplicas(
        _topology(),
        prefix=APP,
        me="app-a-0",
        app_dir=tmp_path,
        replicas=1,
        consumer=ScriptedRestoreConsumer(kafka),
        group=ScriptedGroupView(kafka),
        log_end_offsets=ScriptedRestoreConsumer(kafka).end_offsets,
        open_store=_opener,
        batch=3,
        refresh_interval=0.0,
    )
    standbys.step(lambda: owned, restoring=False)
    assert standbys.lags() == {"0_1": 2}, "one batch of 3 applied, 2 behind"
    standbys.step(lambda: owned, restoring=True)
    assert standbys.lags() == {"0_1": 2}, "no standby work while a restore runs"
    standbys.step(lambda: owned, restoring=False)
    assert standbys.lags() == {"0_1": 0}

    path = tmp_path / "0_1" / "counts"
    assert standbys.take(tmp_path / "0_0" / "counts") is None
    store = standbys.take(path)
    assert store is not None
    assert store.is_open
    assert store.changelog_position() == 5
    assert len(list(store.range(None, None))) == 5
    assert standbys.lags() == {}
    kafka.append(CHANGELOG, 1, b"k9", b"v")
    standbys.step(lambda: {"0_1"}, restoring=False)
    assert store.get(b"k9") is None, "a copy handed over is no longer written"
    store.close()
    standbys.close()


def test_a_copy_placed_elsewhere_is_closed_and_its_files_stay(tmp_path: Path) -> None:
    kafka = ScriptedKafka()
    kafka.create(CHANGELOG, 1)
    kafka.append(CHANGELOG, 0, b"k", b"v")
    kafka.members = {"app-a-0": (), "app-b-0": (("in", 0),)}
    standbys = StandbyReplicas(
        _topology(),
        prefix=APP,
        me="app-a-0",
        app_dir=tmp_path,
        replicas=1,
        consumer=ScriptedRestoreConsumer(kafka),
        group=ScriptedGroupView(kafka),
        log_end_offsets=ScriptedRestoreConsumer(kafka).end_offsets,
        open_store=_opener,
        batch=10,
        refresh_interval=0.0,
    )
    standbys.step(set, restoring=False)
    assert standbys.lags() == {"0_0": 0}
    kafka.members = {"app-a-0": (("in", 0),), "app-b-0": ()}  # the task moves here:
    standbys.step(set, restoring=False)  # the copy waits for the assignment to take it over
    assert standbys.lags() == {"0_0": 0}
    kafka.members = {"app-a-0": (), "app-b-0": ()}  # moving: no one owns it for a moment
    standbys.step(set, restoring=False)
    assert standbys.lags() == {"0_0": 0}
    # A third host joins and ranks first for the copy of 0_0, now owned by b again.
    third = next(
        m
        for m in (f"app-c{n}-0" for n in range(100))
        if standby_members("0_0", "app-b-0", ["app-a-0", "app-b-0", m], 1) == [m]
    )
    kafka.members = {"app-a-0": (), "app-b-0": (("in", 0),), third: ()}
    standbys.step(set, restoring=False)
    assert standbys.lags() == {}
    store = RocksDBStore(tmp_path / "0_0" / "counts", "counts")  # the lock was released
    assert store.changelog_position() == 1
    store.close()
    standbys.close()
