"""The checkpoint file: which changelog offset each store's local state reflects.

Format (UTF-8 JSON)::

    {"version": 1, "offsets": {"<store name>": <next changelog offset to restore from>}}

Invariants:

* The file is replaced atomically: the new content is written to a temporary file in the
  same directory, fsynced, renamed over the old file with :func:`os.replace`, and the
  directory is fsynced. A reader therefore sees either the whole old or the whole new file.
* Write the checkpoint only after the stores it describes are committed and flushed (see
  :mod:`streamer.state.cache`): a checkpoint may lag the stores, never lead them.
* A missing file means "no checkpoint" (restore from the start of each changelog); a file
  that exists but cannot be parsed raises :class:`~streamer.errors.StateError`, since silently
  ignoring it could hide a corrupt state directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.errors import StateError

FORMAT_VERSION = 1


class Checkpoint:
    """Reads and writes checkpoint files; all methods are static."""

    @staticmethod
    def load(path: Path) -> dict[str, int]:
        """The store-name -> offset map in ``path``, or ``{}`` when the file does not exist."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            msg = f"cannot read the state checkpoint {path}: {exc}"
            raise StateError(msg) from exc
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            msg = (
                f"the state checkpoint {path} is corrupt ({exc}); delete it to restore every "
                "store from the start of its changelog"
            )
            raise StateError(msg) from exc
        return _parse(path, data)

    @staticmethod
    def write(path: Path, offsets: Mapping[str, int]) -> None:
        """Atomically replace ``path`` with ``offsets`` (creating parent directories)."""
        path = Path(path)
        for name, offset in offsets.items():
            if not isinstance(name, str) or not _is_offset(offset):
                msg = f"checkpoint entry {name!r}: {offset!r} is not a non-negative int offset"
                raise StateError(msg)
        body = {"version": FORMAT_VERSION, "offsets": dict(sorted(offsets.items()))}
        payload = json.dumps(body, indent=1).encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as tmp:
                    tmp.write(payload)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                os.replace(tmp_name, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
                raise
            _fsync_dir(path.parent)
        except OSError as exc:
            msg = f"cannot write the state checkpoint {path}: {exc}"
            raise StateError(msg) from exc


def _is_offset(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse(path: Path, data: Any) -> dict[str, int]:
    reason = _corruption(data)
    if reason is not None:
        msg = (
            f"the state checkpoint {path} is corrupt ({reason}); delete it to restore every "
            "store from the start of its changelog"
        )
        raise StateError(msg)
    return dict(data["offsets"])


def _corruption(data: Any) -> str | None:
    """Why ``data`` is not a valid checkpoint, or ``None`` when it is one."""
    if not isinstance(data, dict):
        return "top level is not a JSON object"
    version = data.get("version")
    if version != FORMAT_VERSION:
        return f"unsupported version {version!r}, expected {FORMAT_VERSION}"
    offsets = data.get("offsets")
    if not isinstance(offsets, dict):
        return "'offsets' is not a JSON object"
    for name, offset in offsets.items():
        if not _is_offset(offset):
            return f"offset of {name!r} is {offset!r}, not a non-negative integer"
    return None


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["FORMAT_VERSION", "Checkpoint"]
