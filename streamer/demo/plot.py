"""The precision-recall curve of a demo run, as a PNG.

``python -m streamer.demo.plot [--run var/demo] [--png docs/img/fraud-pr-curve.png]`` reads
the run's ``ground-truth.jsonl`` and ``risk-scores.jsonl`` (what ``streamer demo`` writes
to its ``--out`` directory) and draws precision against recall over every risk-score
threshold, at the transaction and at the attack level (see :mod:`streamer.demo.detection`
for the definitions). It needs matplotlib, from the ``demo`` extra
(``pip install 'streamer[demo]'``). ``docs/img/fraud-pr-curve.png`` was drawn this way from
the run that ``docs/fraud.md`` reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from streamer.demo.detection import CurvePoint, pr_curve, truth_from_rows
from streamer.demo.ground_truth import read_ground_truth

DEFAULT_GAP_MS = 30_000
STEPS = 100


def curve_of_run(run: Path, gap_ms: int = DEFAULT_GAP_MS) -> list[CurvePoint]:
    """Precision and recall at thresholds 0.01, 0.02, ..., 1.00 for the run in ``run``."""
    truth = truth_from_rows(read_ground_truth(run / "ground-truth.jsonl"))
    with (run / "risk-scores.jsonl").open() as lines:
        scores = [json.loads(line) for line in lines if line.strip()]
    thresholds = [i / STEPS for i in range(1, STEPS + 1)]
    return pr_curve(truth, scores, gap_ms=gap_ms, thresholds=thresholds)


def draw(points: list[CurvePoint], png: Path, title: str, note: str = "") -> Path:
    """Draw the curve of ``points`` into ``png``; ``note`` goes under the chart (how it was
    made)."""
    try:
        import matplotlib
    except ImportError as exc:
        msg = "drawing the curve needs matplotlib: pip install 'streamer[demo]'"
        raise SystemExit(msg) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in points if p.flagged]  # above the highest score nothing is flagged
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    series: list[tuple[str, Any, Any]] = [
        ("transactions", [p.tx_recall for p in points], [p.tx_precision for p in points]),
        ("attacks", [p.attack_recall for p in points], [p.attack_precision for p in points]),
    ]
    for label, recall, precision in series:
        ax.plot(recall, precision, marker=".", markersize=3, label=label)
    for p in points:
        if any(abs(p.threshold - t) < 1e-9 for t in (0.1, 0.3, 0.5, 0.7, 0.9)):
            ax.annotate(
                f"{p.threshold:.1f}",
                (p.attack_recall, p.attack_precision),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(title, fontsize=10)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamer.demo.plot", description=__doc__)
    parser.add_argument("--run", type=Path, default=Path("var/demo"), help="a demo's --out")
    parser.add_argument("--png", type=Path, default=Path("docs/img/fraud-pr-curve.png"))
    parser.add_argument(
        "--case-gap", type=float, default=DEFAULT_GAP_MS / 1000, help="the run's --case-gap (s)"
    )
    parser.add_argument(
        "--title", default="fraud topology: precision and recall over the risk score"
    )
    args = parser.parse_args(argv)
    points = curve_of_run(args.run, round(args.case_gap * 1000))
    note = f"drawn by: python -m streamer.demo.plot --run {args.run}"
    print(f"wrote {draw(points, args.png, args.title, note)}")
    print(f"    {note}, from its ground-truth.jsonl and risk-scores.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
