"""Entry point of one worker process: ``python -m streamer.runtime.child SPEC CONFIG PROTOCOL``."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from streamer.errors import StreamerError
from streamer.runtime.loader import load_topology
from streamer.runtime.supervisor import config_from_json
from streamer.runtime.worker import Worker


def main(argv: list[str]) -> int:
    spec, config_json, protocol = argv
    config = config_from_json(config_json)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [worker {config.slot}] %(name)s: %(message)s",
    )
    worker = Worker(load_topology(spec), config, group_protocol=protocol)

    def stop(_signum: int, _frame: Any) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.run()
    except StreamerError as exc:
        logging.getLogger("streamer").error("worker %s failed: %s", config.slot, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
