"""The fraud topology end to end on a real broker, and the ``streamer demo`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.demo.generator import KINDS, FraudDataGenerator, GenerationStats, GeneratorConfig
from streamer.demo.scoring import score_alerts
from streamer.kafka.admin import KafkaAdmin
from streamer.kafka.clients import produce
from streamer.testing.kafka import KafkaCluster
from tests.integration.support import WorkerProcess, app_config, decode, read_to_end

ROOT = Path(__file__).resolve().parents[2]
FRAUD = str(ROOT / "topologies" / "fraud.py")
EVENTS = 16_000
COMPACTED = {"cleanup.policy": "compact"}


def _wait_processed(bootstrap: str, group: str, topic: str, total: int, timeout: float) -> None:
    admin = KafkaAdmin(bootstrap)
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = sum(admin.group_offsets(group, topic).values())
        if done >= total:
            return
        time.sleep(0.5)
    raise AssertionError(f"{done} of {total} transactions processed after {timeout} s")


def test_fraud_detection_on_a_worker_group(kafka: KafkaCluster, new_topic, tmp_path: Path) -> None:
    topics = {
        "FRAUD_TRANSACTIONS_TOPIC": new_topic(partitions=4),
        "FRAUD_ALERTS_TOPIC": new_topic(partitions=4),
        "FRAUD_BLOCKED_MERCHANTS_TOPIC": new_topic(config=COMPACTED),
        "FRAUD_CARD_LIMITS_TOPIC": new_topic(config=COMPACTED),
        "FRAUD_INVALID_TOPIC": new_topic(),
    }
    bootstrap = kafka.bootstrap_servers
    generator = FraudDataGenerator(GeneratorConfig(seed=2024, events=EVENTS, rate=500.0))
    produce(
        bootstrap,
        topics["FRAUD_BLOCKED_MERCHANTS_TOPIC"],
        ((m.encode(), json.dumps(r).encode()) for m, r in generator.blocked_merchants.items()),
    )
    produce(
        bootstrap,
        topics["FRAUD_CARD_LIMITS_TOPIC"],
        ((c.encode(), json.dumps(r).encode()) for c, r in generator.card_limits()),
    )
    config = app_config(bootstrap, tmp_path / "state")
    workers = [
        WorkerProcess(
            FRAUD, config.__class__(**{**config.__dict__, "instance": i}), topics, tmp_path
        )
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_until_processing()
        stats = GenerationStats()
        items = list(generator.transactions(int(time.time() * 1000), stats))
        produce(
            bootstrap,
            topics["FRAUD_TRANSACTIONS_TOPIC"],
            ((i.tx["card"].encode(), json.dumps(i.tx).encode()) for i in items),
        )
        _wait_processed(bootstrap, config.app_id, topics["FRAUD_TRANSACTIONS_TOPIC"], EVENTS, 90)
        codes = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.ensure_dead()
    assert codes == [0, 0], "\n".join(w.log_text()[-3000:] for w in workers)
    alerts = [decode(v) for _, _, _, v in read_to_end(bootstrap, topics["FRAUD_ALERTS_TOPIC"])]
    assert read_to_end(bootstrap, topics["FRAUD_INVALID_TOPIC"], timeout=10) == []
    score = score_alerts({i.tx["id"]: i.kind for i in items}, alerts)
    assert score.duplicate_alerts == 0
    assert score.unknown_transactions == 0
    for kind in KINDS:
        pattern = score.patterns[kind]
        assert stats.instances[kind] >= 15, kind
        assert pattern.labelled >= 15, kind
        assert pattern.precision >= 0.95, pattern
        assert pattern.recall >= 0.95, pattern


@pytest.mark.kafka
def test_streamer_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli.main",
            "demo",
            "--events",
            "1500",
            "--rate",
            "500",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = run.stdout
    assert "==> summary" in text
    assert "1,500 processed" in text
    assert "0 duplicates" in text
    for kind in KINDS:
        assert f"\n  {kind} " in text
    assert "latency" in text
    truth = (out / "ground-truth.jsonl").read_text().splitlines()
    assert len(truth) == 1_500
    logs = sorted((out / "logs").glob("worker-*.log"))
    assert len(logs) == 2
    for log in logs:
        assert "stopped:" in log.read_text(), log.read_text()[-2000:]
