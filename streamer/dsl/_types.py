"""Type variables of the DSL's generic classes. Internal.

``K`` and ``V`` are a stream's or table's key and value types; the others name the key or
value types an operation produces (``K2``, ``V2``), a join partner's value (``VO``) and, in a
foreign-key join, its key (``KO``), a joined value (``VR``) and an aggregate (``VA``). Types
are checked statically only: serdes decide what the bytes decode to at run time.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
K2 = TypeVar("K2")
V2 = TypeVar("V2")
VO = TypeVar("VO")
KO = TypeVar("KO")
VR = TypeVar("VR")
VA = TypeVar("VA")
