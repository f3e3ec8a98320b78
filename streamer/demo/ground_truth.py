"""The demo's ground truth file: one ``{"id": ..., "kind": ...}`` JSON line per transaction.

``kind`` is the fraud kind the fraud topology must flag the transaction for, or ``null``
for a legitimate one (see :mod:`streamer.demo.generator`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def write_ground_truth(path: Path, labeled: Iterable[tuple[str, str | None]]) -> int:
    """Write ``{"id": ..., "kind": ...}`` lines (kind None for legitimate transactions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for tx_id, kind in labeled:
            out.write(json.dumps({"id": tx_id, "kind": kind}) + "\n")
            count += 1
    return count


def read_ground_truth(path: Path) -> dict[str, str | None]:
    truth: dict[str, str | None] = {}
    with path.open() as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                truth[row["id"]] = row["kind"]
    return truth
