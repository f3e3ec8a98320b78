"""A reference model of Table.suppress's buffer, as docs/tables.md describes it.

Shared by the driver's property test and the real-broker test. Keys are strings and values
JSON, the builder's default serdes, whose encodings the byte bound counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamer.serde import JsonSerde, StringSerde


@dataclass
class BufferModel:
    """The buffer as the docs describe it: per key (buffer time, value, timestamp)."""

    limit: int
    max_records: int | None
    max_bytes: int | None
    entries: dict[str, tuple[int, Any, int]] = field(default_factory=dict)
    observed: int = -1
    emitted: list[tuple[str, Any, int]] = field(default_factory=list)

    @staticmethod
    def size(key: str, value: Any) -> int:
        encoded = b"" if value is None else JsonSerde().encode(value)
        return len(StringSerde().encode(key)) + len(encoded)

    def _oldest_first(self) -> list[str]:
        return sorted(self.entries, key=lambda k: (self.entries[k][0], k.encode()))

    def _emit(self, key: str) -> None:
        _buffer_time, value, timestamp = self.entries.pop(key)
        self.emitted.append((key, value, timestamp))

    def _full(self) -> bool:
        size = sum(self.size(k, v) for k, (_t, v, _ts) in self.entries.items())
        return (self.max_records is not None and len(self.entries) > self.max_records) or (
            self.max_bytes is not None and size > self.max_bytes
        )

    def update(self, key: str, value: Any, timestamp: int) -> None:
        buffer_time = self.entries[key][0] if key in self.entries else timestamp
        self.entries[key] = (buffer_time, value, timestamp)
        self.observed = max(self.observed, timestamp)
        for due in self._oldest_first():
            if self.entries[due][0] + self.limit <= self.observed:
                self._emit(due)
        while self._full():
            self._emit(self._oldest_first()[0])
