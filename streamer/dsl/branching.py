"""``Stream.branch``: split a stream by predicates into named streams."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from streamer.dsl._types import K, V
from streamer.errors import TopologyError
from streamer.processors import stateless as sl

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream


def branch(
    stream: Stream[K, V],
    branches: Mapping[str, Callable[[K, V], bool]],
    default: str | None,
    name: str | None,
) -> dict[str, Stream[K, V]]:
    """One ``branch`` step after ``stream`` that sends each record to the first branch whose
    predicate holds (or to ``default``), and one pass-through step ``<name>-<branch>`` per
    branch, whose output is that branch's stream."""
    if not branches:
        msg = "branch() needs at least one named predicate"
        raise TopologyError(msg)
    if default is not None and default in branches:
        msg = f"default branch {default!r} has the same name as a predicate branch"
        raise TopologyError(msg)
    graph = stream._graph
    base = graph.generated_name("branch") if name is None else name
    outputs = {b: f"{base}-{b}" for b in branches}
    predicates = {outputs[b]: p for b, p in branches.items()}
    default_child = f"{base}-{default}" if default is not None else None
    splitter = graph.add_processor(
        "branch",
        [stream.node],
        lambda: sl.BranchProcessor(predicates, default_child),
        name=base,
    )
    if default is not None and default_child is not None:
        outputs[default] = default_child
    return {
        branch: stream._like(
            graph.add_processor("branch-output", [splitter], sl.PassThroughProcessor, name=child)
        )
        for branch, child in outputs.items()
    }
