"""reset and replay delete only an app's own local state: a directory strictly under the
state directory that carries the marker a worker of the app wrote. Everything else is
refused, and a refusal changes nothing on the cluster or on disk."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import pytest

from streamer import StreamsBuilder
from streamer.errors import StateError
from streamer.kafka.groups import GroupDescription
from streamer.kafka.types import TP
from streamer.ops.apps import AppTopics, Cluster, OperationRefused
from streamer.ops.replay import ReplayPlan, execute_replay, plan_replay
from streamer.ops.reset import ResetPlan, execute_reset, plan_reset
from streamer.runtime.config import AppConfig
from streamer.runtime.metrics import NoopMetrics
from streamer.runtime.worker_loop import WorkerLoop
from streamer.state.markers import (
    MARKER,
    app_state_dir,
    removable_app_dir,
    remove_app_dir,
    write_marker,
)
from tests.unit.runtime.scripted import ScriptedClients, ScriptedKafka

APP = "orders"


class _Admin:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.topics = {"in", f"{APP}-dlq"}

    def list_topics(self) -> set[str]:
        return set(self.topics)

    def partitions(self, topic: str) -> list[int]:
        return [0]

    def delete_topics(self, names: Any) -> None:
        self.calls.append("delete_topics")
        self.topics -= set(names)


class _Groups:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def describe_group(self, group_id: str) -> GroupDescription:
        return GroupDescription(group_id, "EMPTY", "consumer")

    def committed_offsets(self, group_id: str) -> dict[TP, int]:
        return {("in", 0): 5}

    def list_offsets(self, tps: list[TP], start: Any) -> dict[TP, int]:
        return dict.fromkeys(tps, 0)

    def delete_group(self, group_id: str) -> None:
        self.calls.append("delete_group")

    def alter_offsets(self, group_id: str, offsets: Any) -> None:
        self.calls.append("alter_offsets")


class _Cluster:
    """Enough of :class:`Cluster` for plans and their execution; logs every change."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.admin = _Admin(self.calls)
        self.groups = _Groups(self.calls)

    def app_topics(self, app_id: str, topology: Any, committed: Any = ()) -> AppTopics:
        return AppTopics(app_id, ("in",), (), (), (f"{app_id}-dlq",), exact=False)

    def partitions(self, topics: Any) -> list[TP]:
        return [(t, 0) for t in sorted(set(topics))]


def _cluster() -> tuple[Cluster, list[str]]:
    fake = _Cluster()
    return cast(Cluster, fake), fake.calls


def _app_dir(state: Path, app_id: str = APP) -> Path:
    write_marker(state, app_id)
    path = state / app_id
    (path / "0_0").mkdir()
    (path / "0_0" / "data").write_text("rows")
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


# --- the marker -----------------------------------------------------------------------------


def test_the_marker_names_the_app_and_writing_it_again_changes_nothing(state: Path) -> None:
    path = write_marker(state, APP)
    assert path == (state / APP).resolve()
    assert (path / MARKER).read_text() == APP
    write_marker(state, APP)
    assert sorted(p.name for p in path.iterdir()) == [MARKER]


@pytest.mark.parametrize("app_id", ["..", ".", "", "../x", "a/b", "x/", "a/../.."])
def test_app_ids_that_leave_the_state_directory_are_refused(state: Path, app_id: str) -> None:
    with pytest.raises(StateError, match="does not name a directory directly under"):
        app_state_dir(state, app_id)
    with pytest.raises(StateError):
        write_marker(state, app_id)


def test_an_absolute_app_id_is_refused(state: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / MARKER).write_text(str(outside))
    with pytest.raises(StateError):
        removable_app_dir(state, str(outside))
    assert outside.is_dir()


def test_a_symlink_out_of_the_state_directory_is_refused(state: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / MARKER).write_text(APP)
    (state / APP).symlink_to(outside)
    with pytest.raises(StateError, match="resolves to"):
        remove_app_dir(state, APP)
    assert (outside / MARKER).is_file()


def test_a_directory_without_the_marker_is_refused_with_how_to_delete_it(state: Path) -> None:
    (state / APP / "0_0").mkdir(parents=True)
    with pytest.raises(StateError) as refused:
        remove_app_dir(state, APP)
    message = str(refused.value)
    assert "has no marker file" in message
    assert "Nothing was deleted" in message
    assert f"rm -r -- '{(state / APP).resolve()}'" in message
    assert (state / APP / "0_0").is_dir()


def test_a_marker_of_another_app_is_refused(state: Path) -> None:
    (state / APP).mkdir()
    (state / APP / MARKER).write_text("payments")
    with pytest.raises(StateError, match="has a marker for app 'payments'"):
        remove_app_dir(state, APP)
    assert (state / APP).is_dir()


def test_a_marked_app_directory_is_deleted_and_a_missing_one_is_no_error(state: Path) -> None:
    _app_dir(state)
    assert remove_app_dir(state, APP) is True
    assert not (state / APP).exists()
    assert state.is_dir()
    assert remove_app_dir(state, APP) is False


def test_the_worker_writes_the_marker_when_it_starts(tmp_path: Path) -> None:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(name="counts").to_stream().to("out")
    kafka = ScriptedKafka()
    kafka.create("in", 1)
    kafka.create("out", 1)
    config = AppConfig(APP, "127.0.0.1:9", state_dir=tmp_path / "state")
    loop = WorkerLoop(
        builder.build(),
        config,
        clients=ScriptedClients(kafka),
        metrics=NoopMetrics(),
        tracing=None,
        stop=threading.Event(),
        publish=lambda snapshot: None,
    )
    loop.start()
    try:
        assert (tmp_path / "state" / APP / MARKER).read_text() == APP
    finally:
        loop.close(clean=True)
    assert removable_app_dir(tmp_path / "state", APP) == (tmp_path / "state" / APP).resolve()


# --- reset and replay ---------------------------------------------------------------------


@pytest.mark.parametrize("app_id", ["../x", ".."])
def test_reset_refuses_an_app_id_that_leaves_the_state_directory(
    state: Path, tmp_path: Path, app_id: str
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / MARKER).write_text("../x")
    (state / "keep").mkdir()
    cluster, calls = _cluster()
    with pytest.raises(OperationRefused):
        plan_reset(cluster, app_id, state_dir=state)
    plan = ResetPlan(
        app_id, GroupDescription(app_id, "EMPTY", "consumer"), {}, (), state / app_id, True, False
    )
    with pytest.raises(OperationRefused):
        execute_reset(cluster, plan)
    assert calls == []
    assert (tmp_path / "x" / MARKER).is_file()
    assert (state / "keep").is_dir()


def test_reset_refuses_an_absolute_app_id(state: Path, tmp_path: Path) -> None:
    outside = tmp_path / "abs-target"
    outside.mkdir()
    (outside / MARKER).write_text(str(outside))
    cluster, calls = _cluster()
    with pytest.raises(OperationRefused):
        plan_reset(cluster, str(outside), state_dir=state)
    plan = ResetPlan(
        str(outside), GroupDescription("g", "EMPTY", "consumer"), {}, (), outside, True, False
    )
    with pytest.raises(OperationRefused):
        execute_reset(cluster, plan)
    assert calls == []
    assert (outside / MARKER).is_file()


def test_reset_refuses_unmarked_state_before_changing_the_cluster(state: Path) -> None:
    (state / APP / "0_0").mkdir(parents=True)
    cluster, calls = _cluster()
    with pytest.raises(OperationRefused, match="delete it by hand"):
        plan_reset(cluster, APP, state_dir=state)
    plan = ResetPlan(
        APP, GroupDescription(APP, "EMPTY", "consumer"), {("in", 0): 5}, (), state / APP, True, True
    )
    with pytest.raises(OperationRefused):
        execute_reset(cluster, plan)
    assert calls == []
    assert (state / APP / "0_0").is_dir()


def test_reset_deletes_a_marked_app_directory(state: Path) -> None:
    _app_dir(state)
    (state / "other-app").mkdir()
    cluster, calls = _cluster()
    plan = plan_reset(cluster, APP, state_dir=state)
    assert plan.state_exists
    assert plan.to_json()["state_deleted"] == str(state / APP)
    execute_reset(cluster, plan, timeout=1)
    assert calls == ["delete_group", "delete_topics"]
    assert not (state / APP).exists()
    assert (state / "other-app").is_dir()


@pytest.mark.parametrize("app_id", ["../x", ".."])
def test_replay_refuses_an_app_id_that_leaves_the_state_directory(
    state: Path, tmp_path: Path, app_id: str
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / MARKER).write_text("../x")
    cluster, calls = _cluster()
    with pytest.raises(OperationRefused):
        plan_replay(cluster, app_id, "earliest", state_dir=state)
    plan = ReplayPlan(
        app_id,
        "earliest",
        GroupDescription(app_id, "EMPTY", "consumer"),
        (),
        (),
        state / app_id,
        False,
    )
    with pytest.raises(OperationRefused):
        execute_replay(cluster, plan)
    assert calls == []
    assert (tmp_path / "x" / MARKER).is_file()
    assert state.is_dir()


def test_replay_refuses_unmarked_state_and_deletes_marked_state(state: Path) -> None:
    (state / APP).mkdir()
    cluster, calls = _cluster()
    with pytest.raises(OperationRefused, match="has no marker file"):
        plan_replay(cluster, APP, "earliest", state_dir=state)
    assert calls == []
    write_marker(state, APP)
    plan = plan_replay(cluster, APP, "earliest", state_dir=state)
    execute_replay(cluster, plan, timeout=1)
    assert calls == ["alter_offsets"]
    assert not (state / APP).exists()


def test_replay_without_a_state_directory_checks_nothing_local(state: Path) -> None:
    cluster, calls = _cluster()
    plan = plan_replay(cluster, "..", "earliest")
    assert plan.state_path is None
    execute_replay(cluster, plan, timeout=1)
    assert calls == ["alter_offsets"]
