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

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/benchmarks.md"
IMG = ROOT / "docs/img"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

ENGINES = ("raw", "streamer", "quix")
ROWS = (
    ("stateless", "at-least-once"),
    ("aggregate", "at-least-once"),
    ("aggregate", "exactly-once"),
    ("windowed", "exactly-once"),
)
LABELS = {
    "stateless": "stateless transform",
    "aggregate": "per-card count and sum",
    "windowed": "tumbling 1 min count",
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


CPU_PAIRS = (
    ("raw/streamer, stateless", "raw/stateless/at-least-once", "streamer/stateless/at-least-once"),
    (
        "quix/streamer, stateless",
        "quix/stateless/at-least-once",
        "streamer/stateless/at-least-once",
    ),
    (
        "quix/streamer, aggregate at-least-once",
        "quix/aggregate/at-least-once",
        "streamer/aggregate/at-least-once",
    ),
    (
        "quix/streamer, aggregate exactly-once",
        "quix/aggregate/exactly-once",
        "streamer/aggregate/exactly-once",
    ),
    (
        "quix/streamer, windowed exactly-once",
        "quix/windowed/exactly-once",
        "streamer/windowed/exactly-once",
    ),
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


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, margin, met) for each target of the suite."""
    out: list[tuple[str, str, str, bool | None]] = []

    def ratio_target(label: str, name: str, goal: float) -> None:
        r = _get(results, "ratios", name)
        if r is None:
            out.append((label, "not measured", "", None))
            return
        m = r["median"]
        out.append(
            (
                label,
                f"{m:.2f}x ({r['min']:.2f}-{r['max']:.2f})",
                f"{(m / goal - 1) * 100:+.0f}% vs {goal}x",
                m >= goal,
            )
        )

    ratio_target("stateless streamer >= 0.8x raw loop", "streamer/raw, stateless", 0.8)
    ratio_target(
        "stateful exactly-once streamer >= 2x Quix", "streamer/quix, aggregate exactly-once", 2.0
    )
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
    for name, lat in (_get(results, "latency") or {}).items():
        if not name.endswith("@ half saturation"):
            continue  # fixed-rate rows compare engines at one rate; the target is half load
        p99 = lat["p99_ms"]
        out.append(
            (
                f"p99 < 50 ms at half load: {name}",
                f"{p99['median']:.0f} ms ({p99['min']:.0f}-{p99['max']:.0f})",
                f"{p99['median'] - 50:+.0f} ms vs 50 ms",
                p99["median"] < 50,
            )
        )
    mem = _get(results, "memory")
    if mem is not None:
        small, large = (
            mem["small"]["peak_rss_mib"]["median"],
            mem["large"]["peak_rss_mib"]["median"],
        )
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


def table(results: dict[str, Any]) -> str:
    """The plain-text summary printed at the end of a run."""
    lines = []
    t = results.get("throughput") or {}
    if t:
        lines.append("throughput, records/s: median (min-max)")
        lines.append(f"{'workload':<34}" + "".join(f"{e:>26}" for e in ENGINES))
        for workload, guarantee in ROWS:
            cells = [_mmm(_get(t, f"{e}/{workload}/{guarantee}", "records_per_s")) for e in ENGINES]
            lines.append(f"{workload + ', ' + guarantee:<34}" + "".join(f"{c:>26}" for c in cells))
        lines.append("")
        for name, r in (results.get("ratios") or {}).items():
            lines.append(f"{name:<44} {_mmm(r, '{:.2f}')}")
        lines.append("CPU seconds for the same records, ratio:")
        for name, r in cpu_ratios(results).items():
            lines.append(f"{name:<44} {_mmm(r, '{:.2f}')}")
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

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    colors = {"raw": "#9e9e9e", "streamer": "#1f77b4", "quix": "#ff7f0e"}

    def errbar(s: dict[str, float]) -> tuple[float, float]:
        return (s["median"] - s["min"], s["max"] - s["median"])

    t = results.get("throughput") or {}
    if t:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        width = 0.27
        for i, engine in enumerate(ENGINES):
            xs, ys, errs = [], [], []
            for j, (workload, guarantee) in enumerate(ROWS):
                s = _get(t, f"{engine}/{workload}/{guarantee}", "records_per_s")
                if s:
                    xs.append(j + (i - 1) * width)
                    ys.append(s["median"])
                    errs.append(errbar(s))
            if xs:
                ax.bar(
                    xs,
                    ys,
                    width,
                    label="raw confluent-kafka loop" if engine == "raw" else engine,
                    color=colors[engine],
                    yerr=list(zip(*errs, strict=True)),
                    capsize=3,
                )
        ax.set_xticks(range(len(ROWS)))
        ax.set_xticklabels([f"{LABELS[w]}\n{g}" for w, g in ROWS], fontsize=8)
        ax.set_ylabel("records/s (median, min-max)")
        ax.set_title("Throughput, one process, 8 partitions")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        written.append(_save(fig, out / "bench-throughput.png"))
        plt.close(fig)

    lat = results.get("latency") or {}
    if lat:
        names = list(lat)
        fig, ax = plt.subplots(figsize=(max(9, 1.1 * len(names)), 4.5))
        width = 0.27
        for i, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            ys = [lat[n][q]["median"] for n in names]
            errs = [errbar(lat[n][q]) for n in names]
            ax.bar(
                [k + (i - 1) * width for k in range(len(names))],
                ys,
                width,
                label=q[:3],
                yerr=list(zip(*errs, strict=True)),
                capsize=3,
            )
        ax.axhline(50, color="red", linestyle="--", linewidth=1, label="50 ms target")
        ax.set_xticks(range(len(names)))
        labels = [n.replace("/", "\n", 1).replace(" @ ", "\n@ ") for n in names]
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("ms, record timestamp to committed output")
        ax.set_yscale("log")
        ax.set_title("End-to-end latency: at half of each engine's saturation, and at one rate")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        written.append(_save(fig, out / "bench-latency.png"))
        plt.close(fig)

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
    lat = results.get("latency") or {}
    if lat:
        lines += [
            "",
            "### End-to-end latency",
            "",
            "![latency](img/bench-latency.png)",
            "",
            "| engine/workload/guarantee | rate/s | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in lat.items():
            lines.append(
                f"| {name} | {r['rate']['median']:,.0f} | {_mmm(r['p50_ms'])} | "
                f"{_mmm(r['p95_ms'])} | {_mmm(r['p99_ms'])} | {_mmm(r['max_ms'])} |"
            )
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
