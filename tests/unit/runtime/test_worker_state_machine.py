"""The worker's commit, abort, rebalance and restore ordering, driven by scripted clients.

These check our own rules (what the worker does, in which order), not Kafka's behaviour,
which tests/integration proves on a real broker.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from streamer import StreamsBuilder
from streamer.kafka.runtime_clients import KafkaRuntimeError
from streamer.kafka.types import Message
from streamer.runtime.config import AppConfig, Guarantee
from streamer.runtime.metrics import NoopMetrics, WorkerSnapshot
from streamer.runtime.task import Task
from streamer.runtime.worker import Worker
from streamer.runtime.worker_loop import WorkerLoop
from streamer.serde import LongSerde
from streamer.topology.graph import Topology
from tests.unit.runtime.scripted import ScriptedClients, ScriptedKafka

APP = "app"
CHANGELOG = f"{APP}-counts-changelog"
IN0, IN1 = ("in", 0), ("in", 1)


def _topology() -> Topology:
    builder = StreamsBuilder()
    builder.stream("in").group_by_key().count(name="counts").to_stream().to("out")
    return builder.build()


def _config(tmp_path: Path, guarantee: Guarantee = Guarantee.EXACTLY_ONCE) -> AppConfig:
    # A long interval: the tests commit explicitly.
    return AppConfig(
        APP, "127.0.0.1:9", guarantee=guarantee, state_dir=tmp_path, commit_interval_ms=3_600_000
    )


class _Run:
    """One WorkerLoop over scripted clients, driven step by step."""

    def __init__(self, kafka: ScriptedKafka, config: AppConfig) -> None:
        self.snapshots: list[WorkerSnapshot] = []
        self.loop = WorkerLoop(
            _topology(),
            config,
            clients=ScriptedClients(kafka),
            metrics=NoopMetrics(),
            tracing=None,
            stop=threading.Event(),
            publish=self.snapshots.append,
        )
        self.loop.start()

    def steps(self, n: int = 3) -> None:
        for _ in range(n):
            self.loop.run_once()


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> ScriptedKafka:
    """A scripted cluster with "in" (2 partitions) and "out"; each task's store apply is
    written to its call log too, so tests can place it among the client calls."""
    kafka = ScriptedKafka()
    kafka.create("in", 2)
    kafka.create("out", 1)
    original = Task.commit_stores

    def commit_stores(self: Task, positions: Mapping[str, int] | None = None) -> None:
        kafka.calls.append(("apply_stores", str(self.id), positions))
        if kafka.crash_on_apply:
            raise _Crash
        original(self, positions)

    monkeypatch.setattr(Task, "commit_stores", commit_stores)
    return kafka


class _StopAfterFirstBatch(NoopMetrics):
    def __init__(self) -> None:
        self.worker: Worker | None = None

    def batch(self, messages: Sequence[Message], seconds: float) -> None:
        assert self.worker is not None
        self.worker.request_stop()


def _worker(kafka: ScriptedKafka, config: AppConfig) -> Worker:
    """A worker that stops after its first batch (and commits on the way out)."""
    metrics = _StopAfterFirstBatch()
    worker = Worker(_topology(), config, metrics=metrics, clients=ScriptedClients(kafka))
    metrics.worker = worker
    return worker


def _outputs(kafka: ScriptedKafka) -> list[tuple[str, int]]:
    """The committed output: (key, count) pairs in order."""
    counts = LongSerde()
    return [
        (r.key_.decode(), counts.decode(r.value_))
        for r in kafka.records("out")
        if r.key_ is not None and r.value_ is not None
    ]


def test_commit_sends_changelog_then_commits_the_transaction_then_applies_stores(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    for key in (b"a", b"b", b"a"):
        kafka.append("in", 0, key, b"{}", ts=1000)
    run = _Run(kafka, _config(tmp_path))
    kafka.assign(IN0, IN1)
    run.steps()
    assert kafka.records("out") == [], "nothing is visible before the commit"
    kafka.calls.clear()
    run.loop.commit()

    names = kafka.names()
    first_commit = names.index("commit_transaction")
    changelog_sends = [i for i, c in enumerate(kafka.calls) if c == ("send", CHANGELOG)]
    assert len(changelog_sends) == 2, "one changelog record per dirty key, not per update"
    assert max(changelog_sends) < first_commit
    assert names.index("apply_stores") > first_commit
    _name, offsets, metadata = kafka.calls[first_commit]
    assert offsets == {IN0: 3}
    assert metadata == {IN0: "streamer:st=1000"}, "stream time travels with the offsets"
    assert _outputs(kafka) == [("a", 1), ("b", 1), ("a", 2)]
    run.loop.close(clean=True)


def test_an_abortable_commit_failure_drops_the_caches_and_rewinds_to_committed_offsets(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    run = _Run(kafka, _config(tmp_path))
    kafka.assign(IN0)
    run.steps()
    run.loop.commit()  # a=1 is committed
    for _ in range(2):
        kafka.append("in", 0, b"a", b"{}")
    run.steps()
    kafka.fail_next_commit = KafkaRuntimeError("fenced for a moment", abortable=True)
    kafka.calls.clear()
    run.loop.commit()

    names = kafka.names()
    assert names.index("abort_transaction") > names.index("commit_transaction")
    assert ("seek", IN0, 1) in kafka.calls, "rewound to the committed offset"
    assert run.loop.snapshot().aborts == 1
    # Reprocessed from the committed state: had the cache survived, a would count 4 and 5.
    run.steps()
    run.loop.commit()
    assert _outputs(kafka) == [("a", 1), ("a", 2), ("a", 3)]
    run.loop.close(clean=True)


def test_a_fatal_commit_failure_propagates_and_nothing_is_committed_after_it(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    kafka.assign(IN0)
    kafka.fail_next_commit = KafkaRuntimeError("fenced", fatal=True)
    worker = _worker(kafka, _config(tmp_path))
    with pytest.raises(KafkaRuntimeError, match="fenced"):
        worker.run()
    names = kafka.names()
    assert names.count("commit_transaction") == 1
    assert names[-3:] == ["abort_transaction", "close_consumer", "close_producer"]
    assert kafka.committed == {}
    assert kafka.records("out") == []


def test_revoked_partitions_are_committed_before_their_tasks_close(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    kafka.append("in", 1, b"b", b"{}")
    run = _Run(kafka, _config(tmp_path))
    kafka.assign(IN0, IN1)
    run.steps()
    kafka.calls.clear()
    kafka.revoke(IN1)
    run.steps(1)

    names = kafka.names()
    assert names.index("commit_transaction") < names.index("apply_stores")
    assert kafka.calls[names.index("commit_transaction")][1] == {IN0: 1, IN1: 1}
    assert (tmp_path / APP / "0_1" / ".checkpoint").exists(), "a clean close checkpoints"
    assert [t.id for t in run.loop.snapshot().tasks] == ["0_0"]
    run.loop.close(clean=True)


def test_lost_partitions_abort_and_close_without_committing(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    run = _Run(kafka, _config(tmp_path))
    kafka.assign(IN0)
    run.steps()
    kafka.calls.clear()
    kafka.lose(IN0)
    run.steps(1)

    assert "abort_transaction" in kafka.names()
    assert "commit_transaction" not in kafka.names()
    assert not (tmp_path / APP / "0_0" / ".checkpoint").exists()
    assert run.loop.snapshot().tasks == ()
    run.loop.close(clean=True)
    assert kafka.committed == {}


def test_a_restoring_task_stays_paused_until_its_changelog_is_replayed(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    first = _Run(kafka, _config(tmp_path / "first"))
    kafka.assign(IN0)
    first.steps()
    first.loop.commit()
    first.loop.close(clean=True)
    assert len(kafka.records(CHANGELOG)) == 1

    kafka.append("in", 0, b"a", b"{}")
    kafka.calls.clear()
    second = _Run(kafka, _config(tmp_path / "second"))  # no local state: a full restore
    kafka.assign(IN0)
    second.loop.run_once()
    assert ("pause", [IN0]) in kafka.calls
    assert ("restore_from", (CHANGELOG, 0), None) in kafka.calls
    assert any(s.restoring for s in second.snapshots), "published as restoring on assignment"
    second.steps()
    names = kafka.names()
    assert names.index("resume") > names.index("pause")
    assert second.loop.snapshot().ready
    assert second.loop.snapshot().restored == 1
    second.loop.commit()
    assert _outputs(kafka) == [("a", 1), ("a", 2)], "the restored count goes on"
    second.loop.close(clean=True)


def test_at_least_once_flushes_the_producer_before_committing_offsets(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 1, b"b", b"{}", ts=5)
    run = _Run(kafka, _config(tmp_path, Guarantee.AT_LEAST_ONCE))
    kafka.assign(IN0, IN1)
    run.steps()
    kafka.calls.clear()
    run.loop.commit()

    names = kafka.names()
    assert "begin" not in names
    assert names.index("flush") < names.index("commit_offsets")
    assert kafka.calls[names.index("commit_offsets")] == ("commit_offsets", {IN1: 1})
    assert kafka.committed[IN1] == (1, "streamer:st=5")
    run.loop.close(clean=True)


def test_the_worker_publishes_snapshots_and_stops_cleanly(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    kafka.assign(IN0)
    worker = _worker(kafka, _config(tmp_path))
    assert not worker.ready, "nothing is owned before run"
    worker.run()  # processes, then commits on the way out
    snapshot = worker.snapshot
    assert (snapshot.records_in, snapshot.records_out, snapshot.commits) == (1, 2, 1)
    assert snapshot.rebalances == 2, "assigned, then revoked by the close"
    assert kafka.names()[-2:] == ["close_consumer", "close_producer"]
    assert _outputs(kafka) == [("a", 1)]


class _Crash(Exception):
    """The process dies here (as by SIGKILL)."""


def _crash_after(kafka: ScriptedKafka, config: AppConfig, keys: list[bytes]) -> None:
    """Process ``keys[:1]`` on partition 0 and commit; then process the rest and die after
    that commit's transaction, before its writes reach the stores (the one window in which
    a store misses committed changelog records)."""
    first = _Run(kafka, config)
    kafka.assign(IN0)
    for n, key in enumerate(keys):
        kafka.append("in", 0, key, b"{}")
        first.steps()
        if n == 0:
            first.loop.commit()
    kafka.crash_on_apply = True
    with pytest.raises(_Crash):
        first.loop.commit()
    kafka.crash_on_apply = False
    first.loop.close(clean=False)  # no checkpoint file, stores as written


def test_after_a_crash_only_the_changelog_tail_past_the_recorded_position_is_restored(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    config = _config(tmp_path)
    _crash_after(kafka, config, [b"a", b"b", b"c"])
    assert not list(tmp_path.glob(f"{APP}/*/.checkpoint"))
    assert len(kafka.records(CHANGELOG)) == 3  # a (first commit), then b and c

    kafka.calls.clear()
    second = _Run(kafka, config)
    kafka.assign(IN0)
    second.steps()
    assert ("restore_from", (CHANGELOG, 0), 1) in kafka.calls, "only the tail past a's"
    assert second.loop.snapshot().restored == 2
    kafka.append("in", 0, b"c", b"{}")
    second.steps()
    second.loop.commit()
    assert _outputs(kafka)[-1] == ("c", 2), "the restored count goes on"
    second.loop.close(clean=True)


def test_a_store_ahead_of_its_changelog_is_wiped_and_restored_in_full(
    tmp_path: Path, kafka: ScriptedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _crash_after(kafka, config, [b"a", b"b"])
    kafka.topics[CHANGELOG] = [[] for _ in kafka.topics[CHANGELOG]]  # recreated, empty

    second = _Run(kafka, config)
    kafka.assign(IN0)
    second.steps()
    assert "is ahead of its changelog" in caplog.text
    kafka.append("in", 0, b"a", b"{}")
    second.steps()
    second.loop.commit()
    assert _outputs(kafka)[-1] == ("a", 1), "the old state is gone"
    second.loop.close(clean=True)


def test_a_store_that_cannot_be_opened_is_wiped_and_restored_in_full(
    tmp_path: Path, kafka: ScriptedKafka, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path)
    _crash_after(kafka, config, [b"a", b"a"])
    (tmp_path / APP / "0_0" / "counts" / "CURRENT").write_text("garbage\n")

    kafka.calls.clear()
    second = _Run(kafka, config)
    kafka.assign(IN0)
    second.steps()
    assert "cannot be opened" in caplog.text
    assert ("restore_from", (CHANGELOG, 0), None) in kafka.calls
    kafka.append("in", 0, b"a", b"{}")
    second.steps()
    second.loop.commit()
    assert _outputs(kafka)[-1] == ("a", 3)
    second.loop.close(clean=True)


def test_at_least_once_keeps_positions_a_rebalance_refused_for_the_next_commit(
    tmp_path: Path, kafka: ScriptedKafka
) -> None:
    kafka.append("in", 0, b"a", b"{}")
    run = _Run(kafka, _config(tmp_path, Guarantee.AT_LEAST_ONCE))
    kafka.assign(IN0)
    run.steps()
    kafka.fail_next_offset_commit = KafkaRuntimeError("stale member epoch", retriable=True)
    run.loop.commit()
    assert kafka.committed == {}
    assert run.loop.snapshot().commits == 0
    run.loop.commit()
    assert kafka.committed[IN0][0] == 1, "the refused positions went with the next commit"
    kafka.fail_next_offset_commit = KafkaRuntimeError("not authorized", denied=True)
    kafka.append("in", 0, b"b", b"{}")
    run.steps()
    with pytest.raises(KafkaRuntimeError, match="not authorized"):
        run.loop.commit()
    run.loop.close(clean=False)


def test_positions_are_read_at_most_once_an_interval_and_caught_up_when_idle(
    tmp_path: Path, kafka: ScriptedKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamer.runtime import task_manager

    clock = [1_000.0]
    monkeypatch.setattr(task_manager, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    run = _Run(kafka, _config(tmp_path))
    kafka.assign(IN0)
    applied = []
    for key in (b"a", b"b"):
        kafka.append("in", 0, key, b"{}")
        run.steps()
        kafka.calls.clear()
        run.loop.commit()
        applied += [c[2] for c in kafka.calls if c[0] == "apply_stores"]
    assert applied == [{"counts": 1}, None], "the second commit came within the interval"
    clock[0] += task_manager.POSITION_INTERVAL_S
    kafka.calls.clear()
    run.loop.commit()  # idle: no transaction, but the store is behind its changelog
    assert [c[2] for c in kafka.calls if c[0] == "apply_stores"] == [{"counts": 2}]
    assert "commit_transaction" not in kafka.names()
    clock[0] += task_manager.POSITION_INTERVAL_S
    kafka.calls.clear()
    run.loop.commit()  # idle and caught up: nothing to read
    assert [c[2] for c in kafka.calls if c[0] == "apply_stores"] == [None]
    run.loop.close(clean=True)
