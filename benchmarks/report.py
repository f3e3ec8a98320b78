"""Tables, charts and the results section of docs/benchmarks.md, from a results JSON.

    python -m benchmarks.report [benchmarks/results/results.json]

The charts go to ``docs/img/bench-*.png``; the text between the ``results:begin`` and
``results:end`` markers of ``docs/benchmarks.md`` is replaced, the rest of the page is kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import summary
from benchmarks.report_curves import COLORS, curve_chart, curve_markdown, steady_markdown
from benchmarks.rounds import LEFT_OUT, WORKLOAD_ROWS, row_label
from benchmarks.targets import targets

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/benchmarks.md"
IMG = ROOT / "docs/img"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

ENGINES = ("raw", "streamer", "quix", "kstreams", "kstreams-cached")
ROWS = WORKLOAD_ROWS
LABELS = {
    "stateless": "stateless transform",
    "aggregate": "per-card count and sum",
    "windowed": "tumbling 1 min count, at window close",
    "windowed-update": "tumbling 1 min count, every update",
}
ENGINE_LABELS = {
    "raw": "raw confluent-kafka loop",
    "kstreams": "Kafka Streams, cache 0",
    "kstreams-cached": "Kafka Streams, default cache",
}


def _mmm(s: dict[str, float] | None, fmt: str = "{:,.0f}") -> str:
    if not s:
        return "-"
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


CPU_PAIRS = tuple(
    (
        f"{other}/streamer, {row_label(workload, guarantee)}",
        f"{other}/{workload}/{guarantee}",
        f"streamer/{workload}/{guarantee}",
    )
    for other in ("raw", "quix", "kstreams", "kstreams-cached")
    for workload, guarantee in ROWS
    if (other, workload) not in LEFT_OUT and (other != "raw" or workload == "stateless")
)


def cpu_ratios(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per round, CPU seconds of one engine over the other's for the same records.

    On a shared machine, CPU per record moves much less than wall-clock rates, so these
    ratios (speed in CPU terms: above 1 means streamer needs less CPU) back the rate ratios.
    """
    t = results.get("throughput") or {}
    out: dict[str, dict[str, float]] = {}
    for name, a, b in CPU_PAIRS:
        if a in t and b in t:
            values = [
                x["cpu_s"] / y["cpu_s"] for x, y in zip(t[a]["runs"], t[b]["runs"], strict=True)
            ]
            out[name] = summary(values)
    return out


def table(results: dict[str, Any]) -> str:
    """The plain-text summary printed at the end of a run."""
    lines = []
    t = results.get("throughput") or {}
    if t:
        lines.append("throughput, records/s: median (min-max)")
        lines.append(f"{'workload':<31}" + "".join(f"{e:>26}" for e in ENGINES))
        for workload, guarantee in ROWS:
            cells = [_mmm(_get(t, f"{e}/{workload}/{guarantee}", "records_per_s")) for e in ENGINES]
            lines.append(f"{workload + ', ' + guarantee:<31}" + "".join(f"{c:>26}" for c in cells))
        lines.append("")
        for name, r in (results.get("ratios") or {}).items():
            lines.append(f"{name:<56} {_mmm(r, '{:.2f}')}")
        lines.append("CPU seconds for the same records, ratio:")
        for name, r in cpu_ratios(results).items():
            lines.append(f"{name:<56} {_mmm(r, '{:.2f}')}")
    st = results.get("steady")
    if st:
        lines.append("")
        lines.append(f"steady state ({st['records']:,} records, after {st['warm_up']:,}):")
        for name, row in st["rows"].items():
            cpu = row["steady_cpu_s"]["median"] / row["steady_records"]["median"] * 1e6
            lines.append(
                f"  {name:<44} {_mmm(row['steady_records_per_s']):>26} rec/s, "
                f"{cpu:.1f} µs CPU/record"
            )
        for name, r in st["ratios"].items():
            lines.append(f"  {name:<54} {_mmm(r, '{:.2f}')}")
    lat = results.get("latency") or {}
    if lat:
        lines.append("")
        lines.append("end-to-end latency, ms (median of runs): p50 / p95 / p99")
        for name, r in lat.items():
            lines.append(
                f"{name:<50} at {r['rate']['median']:>7,.0f}/s: {r['p50_ms']['median']:.0f} / "
                f"{r['p95_ms']['median']:.0f} / {r['p99_ms']['median']:.0f}"
            )
    rs = results.get("restore")
    if rs:
        lines.append("")
        lines.append(
            f"restore of {rs['records']:,} changelog records: "
            f"{_mmm(rs['restore']['records_per_s'])}/s vs raw read "
            f"{_mmm(rs['raw_read']['records_per_s'])}/s = {_mmm(rs['ratio'], '{:.2f}')}x"
        )
    sc = results.get("scaling")
    if sc:
        lines.append("")
        lines.append(f"scaling, {sc['workload']}, records/s:")
        for p, r in sc["processes"].items():
            lines.append(f"  {p} process(es): {_mmm(r['records_per_s'])}")
    tg = targets(results)
    if tg:
        lines.append("")
        lines.append("targets:")
        for label, measured, margin, met in tg:
            state = {True: "met", False: "MISSED", None: "-"}[met]
            lines.append(f"  [{state:>6}] {label}: {measured} ({margin})")
    return "\n".join(lines)


# --- charts ---------------------------------------------------------------------------------


def charts(results: dict[str, Any], out: Path = IMG) -> list[Path]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    colors = COLORS

    def errbar(s: dict[str, float]) -> tuple[float, float]:
        return (s["median"] - s["min"], s["max"] - s["median"])

    t = results.get("throughput") or {}
    if t:
        fig, ax = plt.subplots(figsize=(11, 4.8))
        width = 0.16
        for i, engine in enumerate(ENGINES):
            xs, ys, errs = [], [], []
            for j, (workload, guarantee) in enumerate(ROWS):
                s = _get(t, f"{engine}/{workload}/{guarantee}", "records_per_s")
                if s:
                    xs.append(j + (i - 2) * width)
                    ys.append(s["median"])
                    errs.append(errbar(s))
            if xs:
                ax.bar(
                    xs,
                    ys,
                    width,
                    label=ENGINE_LABELS.get(engine, engine),
                    color=colors[engine],
                    yerr=list(zip(*errs, strict=True)),
                    capsize=3,
                )
        ax.set_xticks(range(len(ROWS)))
        ticks = [LABELS[w].replace(", ", "\n") + f"\n{g}" for w, g in ROWS]
        ax.set_xticklabels(ticks, fontsize=8)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylabel("records/s (median, min-max)")
        ax.set_title("Throughput, one process, 8 partitions")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        written.append(_save(fig, out / "bench-throughput.png"))
        plt.close(fig)

    curve = curve_chart(results, out)
    if curve is not None:
        written.append(curve)

    rs = results.get("restore")
    sc = results.get("scaling")
    if rs or sc:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        if rs:
            ax = axes[0]
            items = [("raw read", rs["raw_read"]), ("streamer restore", rs["restore"])]
            ax.bar(
                [n for n, _ in items],
                [s["records_per_s"]["median"] for _, s in items],
                color=[colors["raw"], colors["streamer"]],
                yerr=list(zip(*[errbar(s["records_per_s"]) for _, s in items], strict=True)),
                capsize=3,
            )
            ax.set_title(f"Changelog of {rs['records']:,} records")
            ax.set_ylabel("records/s")
            ax.grid(axis="y", alpha=0.3)
        if sc:
            ax = axes[1]
            ps = sorted(sc["processes"], key=int)
            ys = [sc["processes"][p]["records_per_s"]["median"] for p in ps]
            errs = [errbar(sc["processes"][p]["records_per_s"]) for p in ps]
            ax.errorbar(
                [int(p) for p in ps],
                ys,
                yerr=list(zip(*errs, strict=True)),
                marker="o",
                capsize=3,
                color=colors["streamer"],
            )
            ax.set_xticks([int(p) for p in ps])
            ax.set_xlabel(f"worker processes ({results['machine'].get('nproc')} cores)")
            ax.set_ylabel("records/s")
            ax.set_ylim(bottom=0)
            ax.set_title("Scaling: aggregate, exactly-once")
            ax.grid(alpha=0.3)
        written.append(_save(fig, out / "bench-restore-scaling.png"))
        plt.close(fig)
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# --- the docs section -----------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m.get("versions", {})
    p = results.get("parameters", {})
    lines = [
        f"Measured on: {m.get('nproc')} cores ({m.get('cpu', '?')}), "
        f"{m.get('memory_gib', '?')} GiB memory, Python {m.get('python')}, "
        f"Kafka {results.get('kafka')}, {m.get('java', 'Java ?')}; "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + f". {p.get('records', 0):,} records per throughput run, {p.get('runs')} runs per "
        "figure: median (min-max). Suite time: "
        f"{results.get('suite_seconds', 0) / 60:.0f} min.",
        "",
        "### Targets",
        "",
        "| target | measured | margin | |",
        "|---|---|---|---|",
    ]
    for label, measured, margin, met in targets(results):
        lines.append(f"| {label} | {measured} | {margin} | {_mark(met)} |")
    t = results.get("throughput") or {}
    if t:
        lines += [
            "",
            "### Throughput",
            "",
            "![throughput](img/bench-throughput.png)",
            "",
            "| workload | guarantee | engine | records/s | CPU s per 100k records | peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        for workload, guarantee in ROWS:
            for engine in ENGINES:
                row = t.get(f"{engine}/{workload}/{guarantee}")
                if not row:
                    continue
                cpu = {
                    k: row["cpu_s"][k] * 100_000 / row["records"]["median"]
                    for k in ("median", "min", "max")
                }
                lines.append(
                    f"| {LABELS[workload]} | {guarantee} | {engine} | "
                    f"{_mmm(row['records_per_s'])} | {_mmm(cpu, '{:.2f}')} | "
                    f"{_mmm(row['peak_rss_mib'])} |"
                )
        lines += ["", "| ratio, within each round | median (min-max) |", "|---|---|"]
        for name, r in (results.get("ratios") or {}).items():
            lines.append(f"| records/s {name} | {_mmm(r, '{:.2f}')} |")
        for name, r in cpu_ratios(results).items():
            lines.append(f"| CPU s for the same records, {name} | {_mmm(r, '{:.2f}')} |")
    lines += steady_markdown(results)
    mem = results.get("memory")
    if mem:
        lines += [
            "",
            "### Memory of the stateful benchmark",
            "",
            f"`{mem['workload']}`, peak RSS of the process and RSS when the last record was "
            "processed:",
            "",
            "| records | peak RSS MiB | RSS at the end MiB |",
            "|---|---|---|",
        ]
        for part in ("small", "large"):
            r = mem[part]
            lines.append(f"| {r['records']:,} | {_mmm(r['peak_rss_mib'])} | {_mmm(r['rss_mib'])} |")
        curve = mem["large"].get("rss_samples") or []
        if curve:
            lines += [
                "",
                f"RSS (MiB) by records processed, in the {mem['large']['records']:,}-record run: "
                + ", ".join(f"{n // 1000:,}k: {mib:.0f}" for n, mib in curve)
                + ".",
            ]
    lines += curve_markdown(results)
    rs = results.get("restore")
    sc = results.get("scaling")
    if rs or sc:
        lines += [
            "",
            "### Restore and scaling",
            "",
            "![restore and scaling](img/bench-restore-scaling.png)",
        ]
    if rs:
        lines += [
            "",
            f"Restore of a changelog of {rs['records']:,} records (one partition):",
            "",
            "| | records/s | seconds | CPU s | peak RSS MiB |",
            "|---|---|---|---|---|",
        ]
        for name, part in (("raw read", "raw_read"), ("streamer restore", "restore")):
            r = rs[part]
            lines.append(
                f"| {name} | {_mmm(r['records_per_s'])} | {_mmm(r['seconds'], '{:.2f}')} | "
                f"{_mmm(r['cpu_s'], '{:.2f}')} | {_mmm(r['peak_rss_mib'])} |"
            )
        lines.append(f"| ratio | {_mmm(rs['ratio'], '{:.2f}')} | | | |")
    if sc:
        lines += [
            "",
            f"Scaling, `{sc['workload']}`, {sc['records']:,} records, clock started when the "
            "input became visible:",
            "",
            "| processes | records/s | x one process | CPU s (all processes) | "
            "peak RSS per process MiB |",
            "|---|---|---|---|---|",
        ]
        one = sc["processes"].get("1", {}).get("records_per_s", {}).get("median")
        for procs, r in sorted(sc["processes"].items(), key=lambda kv: int(kv[0])):
            speedup = f"{r['records_per_s']['median'] / one:.2f}" if one else "-"
            lines.append(
                f"| {procs} | {_mmm(r['records_per_s'])} | {speedup} | "
                f"{_mmm(r['cpu_s'], '{:.1f}')} | {_mmm(r['peak_rss_mib'])} |"
            )
    return "\n".join(lines)


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "-"}[met]


def write_docs(results: dict[str, Any], doc: Path = DOC) -> None:
    text = doc.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(text[:start] + "\n" + markdown(results) + "\n" + text[end:])


def write_all(results: dict[str, Any]) -> None:
    for path in charts(results):
        print(f"chart written to {path.relative_to(ROOT)}")
    if DOC.exists() and BEGIN in DOC.read_text():
        write_docs(results)
        print(f"results section of {DOC.relative_to(ROOT)} rewritten")


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "benchmarks/results/results.json"
    results = json.loads(path.read_text())
    print(table(results))
    write_all(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
