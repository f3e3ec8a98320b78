"""Entry point of one worker process.

``python -m streamer.runtime.child SPEC CONFIG PROTOCOL [OPTIONS]``, where OPTIONS is a JSON
object with ``metrics_port`` (serve Prometheus metrics there) and ``metrics_address``.
Tracing turns on from the standard ``OTEL_*`` environment variables
(see :func:`streamer.runtime.tracing.tracing_from_env`).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from streamer.errors import StreamerError
from streamer.runtime.loader import load_topology
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.supervisor import config_from_json
from streamer.runtime.tracing import Tracing, tracing_from_env
from streamer.runtime.worker import Worker


def main(argv: list[str]) -> int:
    # Handle SIGTERM/SIGINT from the start: a stop that arrives while the worker is still
    # starting (loading the topology, global tables) ends it cleanly too, with exit code 0.
    stop_requested = threading.Event()
    workers: list[Worker] = []

    def stop(_signum: int, _frame: Any) -> None:
        stop_requested.set()
        for worker in workers:
            worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    spec, config_json, protocol, *rest = argv
    options: dict[str, Any] = json.loads(rest[0]) if rest else {}
    config = config_from_json(config_json)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [worker {config.slot}] %(name)s: %(message)s",
    )
    log = logging.getLogger("streamer")
    cleanups: list[Callable[[], None]] = []
    try:
        metrics: WorkerMetrics | None = None
        if options.get("metrics_port") is not None:
            from streamer.runtime.prometheus import serve_metrics

            address = str(options.get("metrics_address", "0.0.0.0"))
            port = int(options["metrics_port"])
            metrics, stop_metrics = serve_metrics(port, address)
            cleanups.append(stop_metrics)
            log.info("serving Prometheus metrics on %s:%d", address, port)
        tracing: Tracing | None = tracing_from_env(
            config.app_id, instance_id=config.transactional_id, group=config.app_id
        )
        if tracing is not None:
            cleanups.append(tracing.shutdown)
            log.info("tracing on: exporting spans as the OTEL_* variables say")
        worker = Worker(
            load_topology(spec), config, group_protocol=protocol, metrics=metrics, tracing=tracing
        )
        workers.append(worker)
        if stop_requested.is_set():
            return 0
        worker.run()
    except StreamerError as exc:
        log.error("worker %s failed: %s", config.slot, exc)
        return 1
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception:
                log.exception("shutting down metrics or tracing failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
