"""``streamer describe``: print a topology's sub-topologies, steps, stores and topics.

TOPOLOGY is loaded as ``streamer run`` loads it (``path/to/file.py`` or ``package.module``,
optionally ``:name``). Internal topic names are shown for the app id (--app-id, or from the
--config file or STREAMER_APP_ID), or its internal_topic_prefix when one is set.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from streamer.cli._config import add_config_options, settings_of
from streamer.runtime.loader import load_topology
from streamer.topology.graph import Topology


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="print a topology: sub-topologies, steps, stores, internal topics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("topology", help="path/to/file.py or package.module[:name]")
    add_config_options(
        parser, ["app_id"], kafka=False, helps={"app_id": "resolve internal topic names"}
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def topology_json(topology: Topology, app_id: str) -> dict[str, Any]:
    return {
        "subtopologies": [
            {
                "id": sub.id,
                "source_topics": sorted(ref.resolve(app_id) for ref in sub.source_topics),
                "stores": list(sub.stores),
                "steps": [
                    {
                        "name": name,
                        "description": topology.node(name).describe(),
                        "children": topology.children(name),
                    }
                    for name in sub.nodes
                ],
            }
            for sub in topology.subtopologies
        ],
        "global_tables": [{"name": t.name, "topic": t.topic} for t in topology.global_tables],
        "stores": [
            {
                "name": s.name,
                "kind": s.kind.value,
                "changelog": s.changelog_topic(app_id) if s.changelog else None,
                **(
                    {}
                    if s.history_retention is None
                    else {"history_retention_ms": s.history_retention}
                ),
            }
            for s in topology.stores
        ],
        "internal_topics": topology.internal_topics(app_id),
    }


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)  # an app id, when set, is checked like every command's
    prefix = settings.values["internal_topic_prefix"] or settings.values["app_id"] or "<app-id>"
    topology = load_topology(args.topology)
    if args.json:
        print(json.dumps(topology_json(topology, prefix), indent=2))
    else:
        print(topology.describe(prefix))
    return 0
