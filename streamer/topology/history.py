"""How far back a versioned table keeps its history: :class:`HistoryRetention`."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.errors import TopologyError

# Stream time minus the retention must stay a signed 64-bit millisecond timestamp.
MAX_HISTORY_MS = 2**62


@dataclass(frozen=True, slots=True)
class HistoryRetention:
    """Keep each key's versions for ``ms`` milliseconds of stream time.

    A versioned table answers "which value did this key have at time ``t``?" exactly for any
    ``t`` no older than its stream time (the largest timestamp it has seen) minus ``ms``.
    Updates older than that are refused (counted, not applied), and versions that no such
    question can reach are deleted as stream time moves on.
    """

    ms: int

    def __post_init__(self) -> None:
        if isinstance(self.ms, bool) or not isinstance(self.ms, int):
            msg = f"HistoryRetention(ms) takes an int of milliseconds, got {self.ms!r}"
            raise TopologyError(msg)
        if not 0 < self.ms <= MAX_HISTORY_MS:
            msg = f"HistoryRetention(ms) must be in 1..{MAX_HISTORY_MS}, got {self.ms}"
            raise TopologyError(msg)

    def describe(self) -> str:
        return f"history {self.ms} ms"


__all__ = ["HistoryRetention"]
