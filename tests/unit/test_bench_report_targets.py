"""The benchmark report's targets, latency curve and steady-state table, on made-up results.

The suite's smoke tests check that a real run renders; these check the arithmetic: which
runs a target reads, the bounds it compares with, and how the curve table is laid out.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.latency import parse_rates
from benchmarks.report_curves import curve_markdown, curves, steady_markdown
from benchmarks.rounds import configurations, ratio_pairs, ratios
from benchmarks.targets import targets


def _s(value: float) -> dict[str, float]:
    return {"median": value, "min": value, "max": value, "n": 1}


def _latency(series: str, rate: float, p50: float, p99: float) -> tuple[str, dict[str, Any]]:
    return (
        f"{series} @ {rate:,.0f}/s",
        {"series": series, "rate": _s(rate), "p50_ms": _s(p50), "p99_ms": _s(p99)},
    )


def _steady_row(rate: float, cpu_s: float, records: int = 1_600_000) -> dict[str, Any]:
    return {
        "steady_records_per_s": _s(rate),
        "steady_cpu_s": _s(cpu_s),
        "steady_records": _s(records),
        "records_per_s": _s(rate * 0.9),
    }


def _results() -> dict[str, Any]:
    latency = dict(
        [
            _latency("raw/stateless/at-least-once", 5000, 18, 40),
            _latency("raw/stateless/at-least-once", 2000, 17, 30),
            _latency("streamer/aggregate/at-least-once", 5000, 20, 59),
            _latency("streamer/aggregate/exactly-once", 5000, 80, 141),
            _latency("streamer/aggregate/exactly-once/commit-20ms", 5000, 40, 61),
        ]
    )
    return {
        "parameters": {"records": 300_000},
        "throughput": {
            "streamer/windowed-update/exactly-once": {
                "cpu_s": _s(9.0),
                "records": _s(300_000),
            },
        },
        "steady": {
            "records": 2_000_000,
            "warm_up": 400_000,
            "rows": {
                "streamer/aggregate/exactly-once": _steady_row(40_000, 32.0),
                "streamer/windowed-update/exactly-once": _steady_row(30_000, 48.0),
                "kstreams/windowed-update/exactly-once": _steady_row(29_000, 40.0),
            },
            "ratios": {"streamer/kstreams, windowed-update exactly-once": _s(1.03)},
        },
        "latency": latency,
    }


def _by_label(results: dict[str, Any]) -> dict[str, tuple[str, str, bool | None]]:
    return {label: (measured, margin, met) for label, measured, margin, met in targets(results)}


def test_latency_targets_compare_with_the_raw_loop_at_the_same_rate() -> None:
    found = _by_label(_results())
    alos = found["p99 at 5,000/s: streamer/aggregate/at-least-once <= 1.5x raw p99 (40 ms)"]
    assert alos == ("59 ms (59-59)", "-1 ms vs 60 ms", True)
    eos = found[
        "p99 at 5,000/s: streamer/aggregate/exactly-once <= commit interval 100 ms + raw p99 "
        "(40 ms)"
    ]
    assert eos == ("141 ms (141-141)", "+1 ms vs 140 ms", False)
    short = found[
        "p99 at 5,000/s: streamer/aggregate/exactly-once/commit-20ms <= 20 ms + raw p99 (40 ms)"
    ]
    assert short[2] is False


def test_kstreams_ratio_is_read_from_the_steady_state_when_it_ran() -> None:
    found = _by_label(_results())
    label = (
        "windowed (every update) exactly-once streamer >= 1.0x Kafka Streams (cache 0) "
        "(steady state, 2,000,000 records)"
    )
    assert found[label] == ("1.03x (1.03-1.03)", "+3% vs 1.0x", True)
    missing = "aggregate exactly-once streamer >= 1.0x Kafka Streams (cache 0)"
    assert found[missing] == ("not measured", "", None)


def test_windowed_cpu_targets() -> None:
    found = _by_label(_results())
    ratio = found[
        "streamer windowed (every update) CPU/record <= 1.3x the aggregate's, exactly-once"
    ]
    assert ratio == ("30.0 vs 20.0 µs = 1.50x", "+15% vs 1.3x", False)
    flat = found[
        "streamer windowed (every update) CPU/record flat from the short run to the steady "
        "state (within 10%)"
    ]
    assert flat == ("30.0 µs at 300,000, 30.0 µs at 2,000,000 records", "+0%", True)


def test_curve_table_has_one_column_per_rate_in_order() -> None:
    results = _results()
    assert list(curves(results)["raw/stateless/at-least-once"]) == [2000, 5000]
    lines = curve_markdown(results)
    assert "| series | 2,000/s | 5,000/s |" in lines
    assert "| raw/stateless/at-least-once | 17 / 30 | 18 / 40 |" in lines
    assert "| streamer/aggregate/at-least-once | - | 20 / 59 |" in lines


def test_steady_table_gives_cpu_per_record() -> None:
    lines = steady_markdown(_results())
    row = next(
        line for line in lines if line.startswith("| windowed-update | exactly-once | kstreams")
    )
    assert "| 25.0 (25.0-25.0) |" in row
    assert "| records/s ratio, steady, within each round | median (min-max) |" in lines


def test_ratios_pair_streamer_with_every_other_engine_within_rounds() -> None:
    configs = configurations()
    assert ("kstreams-cached", "windowed", "exactly-once") not in configs
    assert ("kstreams-cached", "aggregate", "exactly-once") in configs
    assert "streamer/kstreams-cached, windowed exactly-once" not in ratio_pairs()
    runs = {
        "streamer/aggregate/exactly-once": [{"records_per_s": 30.0}, {"records_per_s": 40.0}],
        "kstreams/aggregate/exactly-once": [{"records_per_s": 60.0}, {"records_per_s": 40.0}],
    }
    out = ratios(runs)
    assert list(out) == ["streamer/kstreams, aggregate exactly-once"]
    assert out["streamer/kstreams, aggregate exactly-once"]["values"] == [0.5, 1.0]


def test_latency_rates_must_be_positive_numbers() -> None:
    assert parse_rates("2000,5000") == [2000.0, 5000.0]
    with pytest.raises(ValueError, match="comma-separated records/s"):
        parse_rates("half,5000")
    with pytest.raises(ValueError, match="positive"):
        parse_rates("0")
