"""Checkpoint files: atomic replace, tolerant of a missing file, strict about a corrupt one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streamer.errors import StateError
from streamer.state import Checkpoint


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "task-0" / ".checkpoint"
    Checkpoint.write(path, {"counts": 42, "windows": 0})
    assert Checkpoint.load(path) == {"counts": 42, "windows": 0}
    assert json.loads(path.read_text()) == {
        "version": 1,
        "offsets": {"counts": 42, "windows": 0},
    }


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert Checkpoint.load(tmp_path / "nope") == {}


def test_overwrite_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / ".checkpoint"
    Checkpoint.write(path, {"a": 1, "b": 2})
    Checkpoint.write(path, {"a": 5})
    assert Checkpoint.load(path) == {"a": 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".checkpoint"]


def test_failed_replace_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / ".checkpoint"
    Checkpoint.write(path, {"a": 1})

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StateError, match="no space left"):
        Checkpoint.write(path, {"a": 2})
    monkeypatch.undo()
    assert Checkpoint.load(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".checkpoint"]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[1, 2]",
        '{"version": 2, "offsets": {}}',
        '{"offsets": {"a": 1}}',
        '{"version": 1, "offsets": [1]}',
        '{"version": 1, "offsets": {"a": "12"}}',
        '{"version": 1, "offsets": {"a": -3}}',
        '{"version": 1, "offsets": {"a": true}}',
        '{"version": 1, "offsets": {"a": 1.5}}',
    ],
)
def test_corrupt_file_raises_naming_the_path(tmp_path: Path, content: str) -> None:
    path = tmp_path / ".checkpoint"
    path.write_text(content)
    with pytest.raises(StateError, match="corrupt") as info:
        Checkpoint.load(path)
    assert str(path) in str(info.value)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / ".checkpoint"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(StateError, match=str(path)):
        Checkpoint.load(path)


@pytest.mark.parametrize("offset", [-1, 1.0, "3", True, None])
def test_write_rejects_bad_offsets(tmp_path: Path, offset: object) -> None:
    path = tmp_path / ".checkpoint"
    with pytest.raises(StateError, match="offset"):
        Checkpoint.write(path, {"a": offset})  # type: ignore[dict-item]
    assert not path.exists()
