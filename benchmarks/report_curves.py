"""The latency-throughput curve and the steady-state table, for :mod:`benchmarks.report`.

The curve: p50 and p99 of each latency series (an engine, workload, guarantee and commit
interval) at each measured rate, drawn to ``docs/img/bench-latency-curve.png`` and listed
in a table with one column per rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CURVE_PNG = "bench-latency-curve.png"
COLORS = {
    "raw": "#7f7f7f",
    "streamer": "#1f77b4",
    "quix": "#ff7f0e",
    "kstreams": "#2ca02c",
    "kstreams-cached": "#98df8a",
}


def curves(results: dict[str, Any]) -> dict[str, dict[float, dict[str, Any]]]:
    """series -> rate -> its latency row, rates ascending within each series."""
    out: dict[str, dict[float, dict[str, Any]]] = {}
    for name, row in (results.get("latency") or {}).items():
        series = row.get("series") or name.split(" @ ", 1)[0]
        out.setdefault(series, {})[row["rate"]["median"]] = row
    return {s: dict(sorted(by_rate.items())) for s, by_rate in out.items()}


def curve_chart(results: dict[str, Any], out: Path) -> Path | None:
    """p50 and p99 against the offered rate, one line per series (min-max as bars)."""
    data = curves(results)
    if not data:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    styles = ("-", "--", ":", "-.")
    seen: dict[str, int] = {}
    for series, by_rate in data.items():
        engine = series.split("/", 1)[0]
        style = styles[seen.get(engine, 0) % len(styles)]
        seen[engine] = seen.get(engine, 0) + 1
        rates = list(by_rate)
        for ax, q in zip(axes, ("p50_ms", "p99_ms"), strict=True):
            values = [by_rate[r][q] for r in rates]
            ax.errorbar(
                rates,
                [v["median"] for v in values],
                yerr=[
                    [v["median"] - v["min"] for v in values],
                    [v["max"] - v["median"] for v in values],
                ],
                label=series,
                color=COLORS.get(engine, "#333333"),
                linestyle=style,
                marker="o",
                markersize=4,
                capsize=2,
            )
    for ax, q in zip(axes, ("p50", "p99"), strict=True):
        ax.set_title(f"{q}, record timestamp to committed output")
        ax.set_xlabel("offered load, records/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        rates = sorted({r for by_rate in data.values() for r in by_rate})
        ax.set_xticks(rates)
        ax.set_xticklabels([f"{r / 1000:g}k" for r in rates])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    low, high = axes[0].get_ylim()
    ticks = [t * 10**e for e in range(0, 6) for t in (1, 2, 5)]
    axes[0].set_yticks([t for t in ticks if low <= t <= high])
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes[0].set_ylabel("ms (median of runs, min-max)")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    path = out / CURVE_PNG
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curve_markdown(results: dict[str, Any]) -> list[str]:
    data = curves(results)
    if not data:
        return []
    rates = sorted({r for by_rate in data.values() for r in by_rate})
    lines = [
        "",
        "### Latency against load",
        "",
        f"![latency-throughput curve](img/{CURVE_PNG})",
        "",
        "p50 / p99 in ms (medians of the runs), record timestamp to committed output:",
        "",
        "| series | " + " | ".join(f"{r:,.0f}/s" for r in rates) + " |",
        "|---" * (len(rates) + 1) + "|",
    ]
    for series, by_rate in data.items():
        cells = []
        for rate in rates:
            row = by_rate.get(rate)
            cells.append(
                f"{row['p50_ms']['median']:,.0f} / {row['p99_ms']['median']:,.0f}" if row else "-"
            )
        lines.append(f"| {series} | " + " | ".join(cells) + " |")
    return lines


def _fmt(s: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def steady_markdown(results: dict[str, Any]) -> list[str]:
    st = results.get("steady")
    if not st:
        return []
    lines = [
        "",
        f"### Steady state: {st['records']:,} records",
        "",
        f"Rates and CPU after the first {st['warm_up']:,} records (JIT and caches warm), "
        "beside the rate over the whole run. CPU is the engine process's, all threads.",
        "",
        "| workload | guarantee | engine | records/s, steady | CPU µs/record, steady | "
        "records/s, whole run |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in st["rows"].items():
        engine, workload, guarantee = name.split("/")
        cpu = {
            k: row["steady_cpu_s"][k] / row["steady_records"]["median"] * 1e6
            for k in ("median", "min", "max")
        }
        lines.append(
            f"| {workload} | {guarantee} | {engine} | {_fmt(row['steady_records_per_s'])} | "
            f"{_fmt(cpu, '{:.1f}')} | {_fmt(row['records_per_s'])} |"
        )
    lines += ["", "| records/s ratio, steady, within each round | median (min-max) |", "|---|---|"]
    for name, r in st["ratios"].items():
        lines.append(f"| {name} | {_fmt(r, '{:.2f}')} |")
    return lines
