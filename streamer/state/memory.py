"""An in-memory :class:`~streamer.state.base.BytesStore`: a dict plus a sorted key list.

Invariant: ``_keys`` holds exactly the keys of ``_data``, sorted ascending and without
duplicates; it is maintained with :mod:`bisect` on every put and delete, so a range scan costs
two binary searches plus the entries it yields, never a sort of the whole map.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator

from streamer.state.base import checked_batch, closed_error, prefix_upper_bound, range_is_empty


class MemoryStore:
    """An ordered in-memory bytes map; nothing survives :meth:`close`.

    Iterators take a copy of the matching key slice when :meth:`range` is called and look
    each value up as they reach it: a key deleted meanwhile is skipped, a key added meanwhile
    is not seen, and an overwritten value is seen with its new value.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._size = 0
        self._open = True
        self._position: int | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def is_open(self) -> bool:
        return self._open

    def __len__(self) -> int:
        return len(self._data)

    def _check_open(self) -> None:
        if not self._open:
            raise closed_error(self._name)

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        self._put(key, value)

    def delete(self, key: bytes) -> None:
        self._check_open()
        self._delete(key)

    def _put(self, key: bytes, value: bytes) -> None:
        old = self._data.get(key)
        if old is None:
            insort(self._keys, key)
            self._size += len(key) + len(value)
        else:
            self._size += len(value) - len(old)
        self._data[key] = value

    def _delete(self, key: bytes) -> None:
        old = self._data.pop(key, None)
        if old is None:
            return
        index = bisect_left(self._keys, key)
        del self._keys[index]
        self._size -= len(key) + len(old)

    def range(
        self, start: bytes | None, end: bytes | None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        if range_is_empty(start, end):
            return iter(())
        lo = 0 if start is None else bisect_left(self._keys, start)
        hi = len(self._keys) if end is None else bisect_left(self._keys, end)
        keys = self._keys[lo:hi]
        if reverse:
            keys.reverse()
        return self._entries(keys)

    def _entries(self, keys: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        for key in keys:
            value = data.get(key)
            if value is not None:
                yield key, value

    def prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.range(prefix, prefix_upper_bound(prefix))

    def write_batch(
        self,
        entries: Iterable[tuple[bytes, bytes | None]],
        *,
        position: int | None = None,
        logged: bool = True,
    ) -> None:
        self._check_open()
        batch = checked_batch(self._name, entries)  # check all first: atomic
        for key, value in batch:
            if value is None:
                self._delete(key)
            else:
                self._put(key, value)
        if position is not None:
            self._position = position

    def changelog_position(self) -> int | None:
        self._check_open()
        return self._position

    def approximate_size(self) -> int:
        self._check_open()
        return self._size

    def flush(self) -> None:
        self._check_open()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._data = {}
            self._keys = []
            self._size = 0

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        return f"MemoryStore({self._name!r}, {len(self._data)} keys, {state})"


__all__ = ["MemoryStore"]
