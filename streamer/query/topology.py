"""The topology as the console draws it: sub-topologies of steps, with topics and stores."""

from __future__ import annotations

from typing import Any

from streamer.topology.graph import Topology
from streamer.topology.nodes import ProcessorNode, SinkNode, SourceNode


def topology_graph(topology: Topology, prefix: str) -> dict[str, Any]:
    """Per sub-topology its steps in order (each with its kind, parents, the topics it
    reads or writes and the stores it uses), plus the stores and global tables."""
    subtopologies = []
    for sub in topology.subtopologies:
        steps = []
        for name in sub.nodes:
            node = topology.node(name)
            step: dict[str, Any] = {"name": name, "parents": list(node.parents)}
            if isinstance(node, SourceNode):
                step.update(kind="source", topics=[t.resolve(prefix) for t in node.topics])
            elif isinstance(node, SinkNode):
                step.update(kind="sink", topics=[t.resolve(prefix) for t in node.topic_refs()])
            elif isinstance(node, ProcessorNode):
                step.update(kind="processor", operation=node.operation, stores=list(node.stores))
            steps.append(step)
        subtopologies.append({"id": sub.id, "steps": steps, "stores": list(sub.stores)})
    return {
        "subtopologies": subtopologies,
        "stores": [
            {
                "name": s.name,
                "kind": s.kind.value,
                "changelog": s.changelog_topic(prefix) if s.changelog else None,
            }
            for s in topology.stores
        ],
        "global_tables": [{"name": t.name, "topic": t.topic} for t in topology.global_tables],
        "output_topics": sorted(
            {t.resolve(prefix) for t in topology.sink_topics() if not t.internal}
        ),
        "description": topology.describe(prefix),
    }


__all__ = ["topology_graph"]
