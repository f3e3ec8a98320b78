"""benchmarks/profile_paths.py: the engine-only measurement runs every workload on RocksDB
tasks, prints a line per segment, and writes a cProfile report."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import profile_paths


@pytest.mark.parametrize(
    ("workload", "sent"),
    [("stateless", 2_000), ("aggregate", None), ("windowed-update", None)],
)
def test_each_workload_runs_and_reports_its_cpu_per_record(
    workload: str, sent: int | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "profile.txt"
    argv = ["--workload", workload, "--records", "2000", "--segment", "1000"]
    assert profile_paths.main([*argv, "--commit-every", "500", "--profile", str(report)]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()] == [
        "1,000",
        "2,000",
    ]
    total = next(line for line in out.splitlines() if line.startswith("total: "))
    if sent is not None:
        assert f"; {sent:,} records sent" in total
    assert "## by tottime" in report.read_text()
