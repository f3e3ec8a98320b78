"""The query server's application without a broker: statuses, local reads, committed state
only, forwarding decisions. The cluster is a fake; the stores are in memory."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from streamer import StreamsBuilder, TumblingWindows
from streamer.kafka.groups import GroupDescription, GroupMember
from streamer.partitioner import partition_for_key
from streamer.query.app import build_app
from streamer.query.routing import Locator
from streamer.query.service import QueryService
from streamer.query.stores import StoreRegistry
from streamer.runtime.metrics import TaskRestore, TaskSnapshot, WorkerInfo, WorkerSnapshot
from streamer.serde import LongSerde
from streamer.state import CachingStore, MemoryStore

PARTITIONS = 2
ME = "http://127.0.0.1:1"
OTHER = "http://127.0.0.1:2"
TOKEN = "sesame"


def topology() -> Any:
    builder = StreamsBuilder()
    stream = builder.stream("in")
    stream.group_by_key().count(name="counts").to_stream().to("out")
    stream.group_by_key().windowed_by(TumblingWindows(size=1000)).count(name="windowed")
    return builder.build()


class FakeCluster:
    def __init__(self, owners: dict[int, str]) -> None:
        self.owners = owners
        self.describes = 0

    def partition_count(self, topic: str) -> int:
        assert topic == "in"
        return PARTITIONS

    def describe_group(self) -> GroupDescription:
        self.describes += 1
        members = tuple(
            GroupMember(f"m{p}", f"app-{p}|{url}", "/127.0.0.1", None, (("in", p),))
            for p, url in self.owners.items()
        )
        return GroupDescription("app", "STABLE", "CONSUMER", members)


class World:
    """One worker that owns partition 0 (running); partition 1 is restoring, or another's
    (with a standby copy here, ``standby_lag`` behind, when given)."""

    def __init__(self, tmp: Path, *, restoring: bool, standby_lag: int | None = None) -> None:
        self.topology = topology()
        self.registry = StoreRegistry()
        self.caches: dict[str, CachingStore] = {}
        for task in ("0_0", "0_1"):
            for name in ("counts", "windowed"):
                store = self.registry.wrap(tmp / task / name, name, MemoryStore(name))
                self.caches[f"{task}/{name}"] = CachingStore(store)
        tasks = (
            TaskSnapshot("0_0", False, (("in", 0),)),
            TaskSnapshot("0_1", restoring, (("in", 1),), restore=TaskRestore(30, 70, 1.5)),
        )
        self.snapshot = WorkerSnapshot(WorkerInfo("app", "0", "exactly-once"), tasks=tasks)
        if not restoring:
            lags = {} if standby_lag is None else {"0_1": standby_lag}
            self.snapshot = WorkerSnapshot(self.snapshot.info, tasks=tasks[:1], standby_lags=lags)
        self.cluster = FakeCluster({0: ME, 1: OTHER})
        service = QueryService(
            locator=Locator(self.topology, "app", self.cluster),
            registry=self.registry,
            snapshot=lambda: self.snapshot,
            url=ME,
        )
        self.app = build_app(service, self.topology, "app", token=TOKEN)

    def client(self, token: str | None = TOKEN) -> TestClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return TestClient(self.app, headers=headers)


def key_on(partition: int) -> str:
    return next(
        k
        for i in range(100)
        if partition_for_key((k := f"key-{i}").encode(), PARTITIONS) == partition
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, restoring=True)


def test_a_lookup_sees_committed_writes_only(world: World) -> None:
    key = key_on(0)
    cache = world.caches["0_0/counts"]
    cache.put(key.encode(), LongSerde().encode(3))
    with world.client() as client:
        answer = client.get("/api/v1/stores/counts/get", params={"key": key}).json()
        assert (answer["found"], answer["value"], answer["partition"]) == (False, None, 0)
        cache.commit()
        answer = client.get("/api/v1/stores/counts/get", params={"key": key}).json()
        assert (answer["found"], answer["value"], answer["served_by"]) == (True, 3, ME)
        cache.put(key.encode(), LongSerde().encode(4))  # not committed yet: still 3
        assert client.get("/api/v1/stores/counts/get", params={"key": key}).json()["value"] == 3


def test_a_key_on_a_restoring_partition_gets_503_with_its_progress(world: World) -> None:
    with world.client() as client:
        answer = client.get("/api/v1/stores/counts/get", params={"key": key_on(1)})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["restore"]["remaining"] == 70
    assert world.cluster.describes == 0  # never asked elsewhere: it is ours, not ready yet


def test_a_forwarded_request_for_a_partition_not_served_here_is_not_forwarded_again(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, restoring=False)
    with world.client() as client:
        answer = client.get(
            "/api/v1/stores/counts/get",
            params={"key": key_on(1)},
            headers={"X-Streamer-Forwarded": OTHER},
        )
    assert answer.status_code == 503
    assert "moving" in answer.json()["error"]


def test_statuses_for_bad_input(world: World) -> None:
    with world.client() as client:
        unknown = client.get("/api/v1/stores/nope/get", params={"key": "a"})
        assert unknown.status_code == 404
        assert unknown.json()["error"] == (
            "no store named 'nope' in this app (its stores: counts, windowed)"
        )
        bad = client.get("/api/v1/stores/counts/get", params={"key": "!", "encoding": "hex"})
        assert bad.status_code == 400
        assert "not valid hex" in bad.json()["error"]
        missing = client.get("/api/v1/stores/counts/get")
        assert missing.status_code == 400
        kind = client.get("/api/v1/stores/counts/windows", params={"key": "a"})
        assert kind.status_code == 400
        assert "/get or range" in kind.json()["error"]
        limit = client.get("/api/v1/stores/counts/range", params={"limit": "0"})
        assert limit.status_code == 400
    for token in (None, "wrong"):
        with world.client(token) as client:
            denied = client.get("/api/v1/worker")
            assert denied.status_code == 401
            assert denied.headers["WWW-Authenticate"] == "Bearer"
            assert client.get("/api/v1/health").status_code == 200
            assert client.get("/").status_code == 200  # the page asks for the token


def test_the_worker_view_shows_tasks_and_restore_progress(world: World) -> None:
    with world.client() as client:
        view = client.get("/api/v1/worker").json()
    assert [(t["id"], t["state"]) for t in view["tasks"]] == [
        ("0_0", "running"),
        ("0_1", "restoring"),
    ]
    assert view["tasks"][1]["restore"]["progress"] == pytest.approx(0.3)


def test_a_closed_store_is_unavailable_not_an_error(world: World) -> None:
    world.caches["0_0/counts"].close()
    with world.client() as client:
        answer = client.get("/api/v1/stores/counts/get", params={"key": key_on(0)})
    assert answer.status_code == 503


def test_a_standby_copy_answers_marked_stale_when_the_owner_cannot(tmp_path: Path) -> None:
    world = World(tmp_path, restoring=False, standby_lag=5)
    key = key_on(1)
    copy = world.caches["0_1/counts"]
    copy.put(key.encode(), LongSerde().encode(7))
    copy.commit()
    world.cluster.owners = {0: ME}  # partition 1 has no owner now (its owner just left)
    with world.client() as client:
        answer = client.get("/api/v1/stores/counts/get", params={"key": key})
        assert answer.status_code == 200
        body = answer.json()
        assert (body["value"], body["stale"], body["lag"]) == (7, True, 5)
        forwarded = client.get(
            "/api/v1/stores/counts/get",
            params={"key": key},
            headers={"X-Streamer-Forwarded": OTHER},
        )
        assert forwarded.status_code == 503  # a forwarded request gets no stale answer
        world.snapshot = WorkerSnapshot(world.snapshot.info, tasks=world.snapshot.tasks)
        assert client.get("/api/v1/stores/counts/get", params={"key": key}).status_code == 503
