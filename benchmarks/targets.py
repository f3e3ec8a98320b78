"""The suite's targets, each checked against a results file: (target, measured, margin, met).

Throughput ratios are read from the steady-state section when it ran (long runs, past JIT
warm-up), else from the short throughput runs; the label says which. Latency targets are
read at 5,000 records/s, against the raw loop measured at the same rate in the same rounds.
"""

from __future__ import annotations

from typing import Any

Target = tuple[str, str, str, bool | None]
LATENCY_RATE = "5,000/s"
RAW = "raw/stateless/at-least-once"


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _ratio_source(results: dict[str, Any], name: str) -> tuple[dict[str, float] | None, str]:
    steady = _get(results, "steady", "ratios", name)
    if steady is not None:
        return steady, f"steady state, {results['steady']['records']:,} records"
    short = _get(results, "ratios", name)
    records = _get(results, "parameters", "records") or 0
    return short, f"{records:,} records"


def _ratio(results: dict[str, Any], label: str, name: str, goal: float) -> Target:
    r, where = _ratio_source(results, name)
    if r is None:
        return (label, "not measured", "", None)
    m = r["median"]
    return (
        f"{label} ({where})",
        f"{m:.2f}x ({r['min']:.2f}-{r['max']:.2f})",
        f"{(m / goal - 1) * 100:+.0f}% vs {goal}x",
        m >= goal,
    )


def _cpu_per_record(results: dict[str, Any], name: str, *, steady: bool) -> float | None:
    if steady:
        row = _get(results, "steady", "rows", name)
        if row is None:
            return None
        return float(row["steady_cpu_s"]["median"] / row["steady_records"]["median"] * 1e6)
    row = _get(results, "throughput", name)
    if row is None:
        return None
    return float(row["cpu_s"]["median"] / row["records"]["median"] * 1e6)


def windowed_cpu(results: dict[str, Any]) -> list[Target]:
    """Windowed (every update) CPU per record against the plain aggregate, and its growth."""
    windowed, plain = "streamer/windowed-update/exactly-once", "streamer/aggregate/exactly-once"
    out: list[Target] = []
    steady = _get(results, "steady", "rows", windowed) is not None
    w, p = (_cpu_per_record(results, n, steady=steady) for n in (windowed, plain))
    if w is not None and p:
        out.append(
            (
                "streamer windowed (every update) CPU/record <= 1.3x the aggregate's, exactly-once",
                f"{w:.1f} vs {p:.1f} µs = {w / p:.2f}x",
                f"{(w / p / 1.3 - 1) * 100:+.0f}% vs 1.3x",
                w / p <= 1.3,
            )
        )
    short = _cpu_per_record(results, windowed, steady=False)
    long_ = _cpu_per_record(results, windowed, steady=True)
    if short and long_:
        growth = long_ / short - 1
        out.append(
            (
                "streamer windowed (every update) CPU/record flat from the short run to the "
                "steady state (within 10%)",
                f"{short:.1f} µs at {results['parameters']['records']:,}, {long_:.1f} µs at "
                f"{results['steady']['records']:,} records",
                f"{growth * 100:+.0f}%",
                growth <= 0.10,
            )
        )
    return out


def latency(results: dict[str, Any]) -> list[Target]:
    """At 5,000/s: stateful at-least-once p99 <= 1.5x the raw loop's, exactly-once p99 <=
    the commit interval + the raw loop's."""
    lat = results.get("latency") or {}
    raw = _get(lat, f"{RAW} @ {LATENCY_RATE}", "p99_ms", "median")
    if raw is None:
        return []
    out: list[Target] = []
    checks = (
        ("streamer/aggregate/at-least-once", 1.5 * raw, "1.5x raw p99"),
        ("streamer/aggregate/exactly-once", 100 + raw, "commit interval 100 ms + raw p99"),
        ("streamer/aggregate/exactly-once/commit-20ms", 20 + raw, "20 ms + raw p99"),
    )
    for series, bound, what in checks:
        p99 = _get(lat, f"{series} @ {LATENCY_RATE}", "p99_ms")
        if p99 is None:
            continue
        m = p99["median"]
        out.append(
            (
                f"p99 at {LATENCY_RATE}: {series} <= {what} ({raw:.0f} ms)",
                f"{m:.0f} ms ({p99['min']:.0f}-{p99['max']:.0f})",
                f"{m - bound:+.0f} ms vs {bound:.0f} ms",
                m <= bound,
            )
        )
    return out


def targets(results: dict[str, Any]) -> list[Target]:
    """(target, measured, margin, met) for each target of the suite."""
    out = [
        _ratio(results, "stateless streamer >= 0.8x raw loop", "streamer/raw, stateless", 0.8),
        _ratio(
            results,
            "stateful exactly-once streamer >= 2x Quix",
            "streamer/quix, aggregate exactly-once",
            2.0,
        ),
    ]
    for label, name in (
        ("aggregate exactly-once", "aggregate exactly-once"),
        ("windowed (every update) exactly-once", "windowed-update exactly-once"),
    ):
        out.append(
            _ratio(
                results,
                f"{label} streamer >= 1.0x Kafka Streams (cache 0)",
                f"streamer/kstreams, {name}",
                1.0,
            )
        )
    out += windowed_cpu(results)
    r = _get(results, "restore", "ratio")
    if r is not None:
        m = r["median"]
        out.append(
            (
                "restore >= 0.7x raw changelog read",
                f"{m:.2f}x ({r['min']:.2f}-{r['max']:.2f})",
                f"{(m / 0.7 - 1) * 100:+.0f}% vs 0.7x",
                m >= 0.7,
            )
        )
    out += latency(results)
    mem = _get(results, "memory")
    if mem is not None:
        small = mem["small"]["peak_rss_mib"]["median"]
        large = mem["large"]["peak_rss_mib"]["median"]
        growth = large / small - 1
        times = mem["large"]["records"] / mem["small"]["records"]
        out.append(
            (
                "stateful peak RSS bounded",
                f"{small:.0f} MiB at {mem['small']['records']:,}, "
                f"{large:.0f} MiB at {mem['large']['records']:,} records",
                f"{growth * 100:+.0f}% for {times:.0f}x the records",
                growth < 0.15,
            )
        )
    return out
