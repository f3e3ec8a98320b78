"""Local state as the operations see it: ``<state_dir>/<app_id>`` on this host.

``reset`` and ``replay`` delete an app's local state only through these two functions, which
apply the checks of :mod:`streamer.state.markers` (the directory lies strictly under the
state directory and holds the marker a worker of the app wrote). Both are called before any
change on the cluster, and :func:`remove_local_state` checks again just before deleting, so
a refusal leaves the cluster and the disk as they were.
"""

from __future__ import annotations

from pathlib import Path

from streamer.errors import StateError
from streamer.ops.apps import OperationRefused
from streamer.state.markers import removable_app_dir, remove_app_dir


def check_local_state(state_dir: Path, app_id: str) -> bool:
    """True if ``<state_dir>/<app_id>`` exists and may be deleted, False if it does not exist.

    Raises :class:`OperationRefused` when the app id leads out of the state directory, or
    the directory carries no marker of the app.
    """
    try:
        return removable_app_dir(state_dir, app_id) is not None
    except StateError as exc:
        raise OperationRefused(str(exc)) from exc


def remove_local_state(state_dir: Path, app_id: str) -> bool:
    """Delete ``<state_dir>/<app_id>`` after the checks of :func:`check_local_state`; False
    if it did not exist."""
    try:
        return remove_app_dir(state_dir, app_id)
    except StateError as exc:
        raise OperationRefused(str(exc)) from exc


__all__ = ["check_local_state", "remove_local_state"]
