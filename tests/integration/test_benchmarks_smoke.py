"""The benchmark suite runs end to end on tiny inputs and gives sane numbers.

Not a timed test: it checks that every benchmark runs against the real broker, that the
rates are positive and the ratios plausible, and that the report renders. Quix Streams is
benchmarked only where it is installed (``./scripts/bench`` installs it into .venv-bench);
Kafka Streams has its own test (``test_benchmarks_kstreams.py``).
"""

from __future__ import annotations

import argparse

import pytest

from benchmarks import report
from benchmarks.common import preproduce
from benchmarks.suite import ALOS, EOS, Suite, parser, run_suite
from streamer.testing.kafka.backends import KafkaCluster

pytestmark = pytest.mark.kafka


def _options(*extra: str) -> argparse.Namespace:
    return parser().parse_args(
        [
            "--records=4000",
            "--steady-records=6000",
            "--runs=1",
            "--rss-records=8000",
            "--restore-records=20000",
            "--scale=1,2",
            "--scale-records=4000",
            "--latency-seconds=2",
            "--latency-rates=500",
            "--latency-warm-up=0.5",
            "--no-quix",
            "--no-kstreams",
            "--no-report",
            *extra,
        ]
    )


def test_suite_runs_and_gives_sane_numbers(kafka: KafkaCluster) -> None:
    results = run_suite(kafka.bootstrap_servers, _options())

    throughput = results["throughput"]
    assert set(throughput) == {
        "raw/stateless/at-least-once",
        "streamer/stateless/at-least-once",
        "streamer/aggregate/at-least-once",
        "streamer/aggregate/exactly-once",
        "streamer/windowed/exactly-once",
        "streamer/windowed-update/exactly-once",
    }
    for name, row in throughput.items():
        assert row["records_per_s"]["median"] > 100, name
        assert row["cpu_s"]["median"] > 0, name
        assert 10 < row["peak_rss_mib"]["median"] < 4096, name
    ratio = results["ratios"]["streamer/raw, stateless"]["median"]
    assert 0.02 < ratio < 50

    steady = results["steady"]
    assert steady["records"] == 6000
    assert steady["warm_up"] == 1200
    assert set(steady["rows"]) == {
        "raw/stateless/at-least-once",
        "streamer/stateless/at-least-once",
        "streamer/aggregate/at-least-once",
        "streamer/aggregate/exactly-once",
        "streamer/windowed/exactly-once",
        "streamer/windowed-update/exactly-once",
    }
    for name, row in steady["rows"].items():
        assert row["steady_records"]["median"] == 4800, name
        assert row["steady_records_per_s"]["median"] > 100, name
        assert 0 < row["steady_cpu_s"]["median"] <= row["cpu_s"]["median"], name
    assert "streamer/raw, stateless" in steady["ratios"]

    memory = results["memory"]
    assert memory["small"]["records"] == 8000
    assert memory["large"]["records"] == 24000
    assert memory["large"]["peak_rss_mib"]["median"] > 10

    latency = results["latency"]
    assert "raw/stateless/at-least-once @ 500/s" in latency
    assert "streamer/stateless/at-least-once @ 500/s" in latency
    for name, row in latency.items():
        assert 0 <= row["p50_ms"]["median"] <= row["p99_ms"]["median"] < 60_000, name

    restore = results["restore"]
    assert restore["restore"]["records"]["median"] == 20000
    assert 0.02 < restore["ratio"]["median"] < 50

    scaling = results["scaling"]["processes"]
    assert set(scaling) == {"1", "2"}
    assert all(row["records_per_s"]["median"] > 100 for row in scaling.values())

    text = report.table(results)
    assert "throughput" in text
    assert "targets:" in text
    assert "### Targets" in report.markdown(results)


def test_quix_runs_the_same_workloads(kafka: KafkaCluster) -> None:
    pytest.importorskip("quixstreams")
    suite = Suite(kafka.bootstrap_servers, _options())
    source = suite.topic("smoke-in")
    preproduce(kafka.bootstrap_servers, source, 3000).flush(10)
    workloads = (
        ("stateless", ALOS),
        ("aggregate", EOS),
        ("windowed", EOS),
        ("windowed-update", EOS),
    )
    for workload, guarantee in workloads:
        result = suite.run_throughput("quix", workload, guarantee, source, 3000)
        assert result["records_per_s"] > 100, workload
