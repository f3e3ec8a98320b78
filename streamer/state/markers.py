"""The marker file that says a directory is an app's local state, written by streamer.

A worker creates ``<state_dir>/<app_id>/`` and writes ``.streamer-app`` in it, holding the
app id. The operations that delete local state (``streamer reset`` and ``streamer replay``)
delete a directory only when :func:`removable_app_dir` accepts it:

* it resolves (symlinks included) to a path strictly under the resolved state directory, and
  its name is the app id: ``..``, an absolute path, ``a/../..`` or a symlink out of the
  state directory is refused, whatever the caller validated before;
* it holds the marker, and the marker names the same app id: a directory written by an older
  version, or by something other than streamer, is refused.

A refusal deletes nothing and says what to check and how to delete the directory by hand.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from streamer.errors import StateError

MARKER = ".streamer-app"
"""Name of the marker file inside ``<state_dir>/<app_id>``; its text is the app id."""


def app_state_dir(state_dir: Path, app_id: str) -> Path:
    """``<state_dir>/<app_id>`` resolved, refused unless it lies strictly under the resolved
    state directory as its direct child named ``app_id``."""
    root = state_dir.resolve()
    target = (state_dir / app_id).resolve()
    if not app_id or target.parent != root or target.name != app_id:
        msg = (
            f"app id {app_id!r} does not name a directory directly under the state "
            f"directory {root}: it resolves to {target}. Refusing to touch it; an app id "
            "is 1-200 characters from [a-zA-Z0-9._-], and not '.' or '..'."
        )
        raise StateError(msg)
    return target


def write_marker(state_dir: Path, app_id: str) -> Path:
    """Create ``<state_dir>/<app_id>`` if needed and write its marker; returns the directory.

    Idempotent, and safe when the worker processes of one host start together: each writes
    its own temporary file and renames it over the marker, so a reader sees the whole app id
    or no marker at all.
    """
    path = app_state_dir(state_dir, app_id)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == app_id:
        return path
    fd, partial = tempfile.mkstemp(prefix=f"{MARKER}.", suffix=".tmp", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(app_id)
        os.replace(partial, marker)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def removable_app_dir(state_dir: Path, app_id: str) -> Path | None:
    """The app's state directory if streamer may delete it, None if it does not exist.

    Raises :class:`~streamer.errors.StateError` when the path escapes the state directory, is not a
    directory, or carries no marker naming ``app_id``.
    """
    path = app_state_dir(state_dir, app_id)
    if not path.exists():
        return None
    if not path.is_dir():
        msg = f"{path} is not a directory; check what it is and delete it by hand (rm {path})"
        raise StateError(msg)
    marker = path / MARKER
    found = marker.read_text(encoding="utf-8") if marker.is_file() else None
    if found != app_id:
        why = "has no marker file" if found is None else f"has a marker for app {found!r}"
        msg = (
            f"{path} {why} ({MARKER} containing {app_id!r}, written by a worker of this "
            "version when it starts), so it was not written by this app, or was written "
            "by an older version. Nothing was deleted. Check that it is the app's local "
            "state and that no worker uses it, then delete it by hand: "
            f"rm -r -- '{path}'"
        )
        raise StateError(msg)
    return path


def remove_app_dir(state_dir: Path, app_id: str) -> bool:
    """Delete the app's state directory after :func:`removable_app_dir` accepts it; False if
    it did not exist."""
    path = removable_app_dir(state_dir, app_id)
    if path is None:
        return False
    shutil.rmtree(path)
    return True


__all__ = [
    "MARKER",
    "app_state_dir",
    "removable_app_dir",
    "remove_app_dir",
    "write_marker",
]
