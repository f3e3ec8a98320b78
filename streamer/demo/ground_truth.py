"""The demo's ground truth file: one JSON line per transaction.

``{"id", "card", "ts", "kind", "attack"}``: ``attack`` is the id of the injected attack the
transaction belongs to (``null`` for a legitimate one), and ``kind`` its kind in the
realistic mode, or in the conformance mode the kind the fraud topology must flag the
transaction for (see :mod:`streamer.demo.generator`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def write_ground_truth(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write one JSON line per row; return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(dict(row)) + "\n")
            count += 1
    return count


def read_ground_truth(path: Path) -> list[dict[str, Any]]:
    """The rows of a ground truth file, in order."""
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]
