"""Running a topology from Python: :func:`run` is the programmatic ``streamer run``.

It runs one worker in the calling process, on the calling thread, until SIGINT or SIGTERM
(or ``stop``, when given, is set). For a group of processes on one host, use the
``streamer run --processes N`` command, whose supervisor restarts crashed workers.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from streamer.runtime.config import AppConfig

if TYPE_CHECKING:
    from streamer.runtime.metrics import WorkerMetrics
    from streamer.runtime.tracing import Tracing
    from streamer.topology.graph import Topology


def run(
    topology: Topology,
    config: AppConfig,
    *,
    group_protocol: str = "consumer",
    metrics: WorkerMetrics | None = None,
    tracing: Tracing | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run ``topology`` as one member of the group ``config.app_id`` until stopped.

    On the main thread, SIGINT and SIGTERM ask the worker to commit, close and leave; the
    previous handlers come back afterwards. ``stop``, when given, does the same from another
    thread. Errors surface as :class:`streamer.errors.StreamerError` subclasses.
    """
    from streamer.runtime.worker import Worker

    worker = Worker(
        topology, config, group_protocol=group_protocol, metrics=metrics, tracing=tracing
    )
    watcher: threading.Thread | None = None
    if stop is not None:
        watched = stop

        def watch() -> None:
            watched.wait()
            worker.request_stop()

        watcher = threading.Thread(target=watch, name="streamer-stop", daemon=True)
        watcher.start()
    if threading.current_thread() is not threading.main_thread():
        worker.run()
        return

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        worker.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
