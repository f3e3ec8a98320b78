"""Records whose event times are older than a topic's time retention.

A broker deletes a log segment once its newest timestamp is older than ``retention.ms``,
including the active segment and records of a transaction that is still open. Output keeps
the input's event time, so reprocessing last year's data would lose records in any internal
topic with time retention. Repartition topics therefore keep records forever
(``retention.ms=-1``), and the worker deletes what its group has committed instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.clients import produce
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import (
    OLD_EVENT_TIME_MS,
    app_config,
    decode,
    read_to_end,
    wait_for_count,
    wait_for_group_caught_up,
    wait_for_time_retention,
    worker_thread,
)


def test_old_event_times_survive_the_repartition_topic(
    kafka: KafkaCluster, new_topic, tmp_path: Path, monkeypatch
) -> None:
    bootstrap = kafka.bootstrap_servers
    source, sink = new_topic(partitions=2), new_topic(partitions=2)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    wait_for_time_retention(bootstrap)
    total = 400
    records = [
        (f"c{n}".encode(), json.dumps({"n": n, "group": f"g{n % 4}"}).encode())
        for n in range(1, total + 1)
    ]
    produce(bootstrap, source, records, timestamp=OLD_EVENT_TIME_MS)
    # Transactions stay open for seconds, across several of the broker's retention checks.
    config = app_config(
        bootstrap,
        tmp_path / "state",
        commit_interval_ms=3000,
        repartition_purge_interval_ms=1000,
    )
    with worker_thread(apps.regrouped_sum(), config):
        wait_for_count(bootstrap, sink, total, timeout=120)  # one update per input record
        repartition = f"{config.app_id}-by-group-repartition"
        # Committed offsets reach the end, past the transaction markers: no lag of 1 left.
        wait_for_group_caught_up(bootstrap, config.app_id, repartition, timeout=60)
    finals: dict[str, dict[str, int]] = {}
    for _p, _o, key, value in read_to_end(bootstrap, sink):
        assert key is not None
        finals[key.decode()] = decode(value)
    expected = {
        f"g{g}": {
            "total": sum(n for n in range(1, total + 1) if n % 4 == g),
            "count": total // 4,
        }
        for g in range(4)
    }
    assert finals == expected
    admin = KafkaAdmin(bootstrap)
    assert admin.topic_config(repartition)["retention.ms"] == "-1"
    # Committed repartition records were deleted by the worker, not by retention.
    starts = admin.start_offsets(repartition)
    assert all(start > 0 for start in starts.values()), starts
