"""Entry point of one worker process, as started by :func:`streamer.runtime.launch.launch_worker`.

``python -m streamer.runtime.child SPEC --config-fd N --parent-pid P [--status-fd M]``

Start-up order, each step before the next:

1. SIGTERM and SIGINT are handled, so a stop that arrives while the worker is starting
   still ends it cleanly (exit code 0);
2. on Linux, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` asks the kernel to send SIGTERM when the
   parent dies, however it dies (SIGKILL included); then ``os.getppid()`` is compared with
   ``P``, which closes the race of a parent that died before the ``prctl``. SIGTERM (not
   SIGKILL) lets the orphaned worker commit, close its stores and leave the group;
3. the configuration is read from fd ``N`` (a pipe only this process and its launcher
   hold) to its end, and the fd closed;
4. the worker runs. When it fails, the reason goes to the log (the traceback too with
   ``verbose``) and, as one line, to fd ``M``, which the supervisor reads.

Tracing turns on from the standard ``OTEL_*`` environment variables
(see :func:`streamer.runtime.tracing.tracing_from_env`).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, NamedTuple

from streamer.errors import ConfigError, StreamerError
from streamer.kafka.admin import KafkaAdminError
from streamer.kafka.runtime_clients import KafkaRuntimeError
from streamer.runtime.config import AppConfig
from streamer.runtime.launch import EXIT_PERMANENT, WorkerOptions, payload_from_json
from streamer.runtime.loader import load_topology
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.tracing import Tracing, tracing_from_env
from streamer.runtime.worker import Worker

if TYPE_CHECKING:
    from streamer.query.server import QueryServer
    from streamer.topology.graph import Topology

log = logging.getLogger("streamer")

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Have Linux send SIGTERM to this process when its parent dies; False when the parent
    ``parent_pid`` is already gone. Elsewhere only the parent check is made."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            reason = os.strerror(ctypes.get_errno())
            print(f"streamer: prctl(PR_SET_PDEATHSIG) failed: {reason}", file=sys.stderr)
    return os.getppid() == parent_pid


def read_payload(fd: int) -> tuple[AppConfig, WorkerOptions]:
    """The configuration written to the pipe ``fd``, read to its end; the fd is closed."""
    with open(fd, "rb", closefd=True) as pipe:
        return payload_from_json(pipe.read())


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m streamer.runtime.child")
    parser.add_argument("spec")
    parser.add_argument("--config-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--status-fd", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    stop_requested = threading.Event()
    workers: list[Worker] = []

    def stop(_signum: int, _frame: Any) -> None:
        stop_requested.set()
        for worker in workers:
            worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    args = _arguments(argv)
    if args.status_fd is not None:
        os.set_inheritable(args.status_fd, False)
    if not die_with_parent(args.parent_pid):
        print("streamer: the worker's supervisor exited before it started", file=sys.stderr)
        return 1
    try:
        config, options = read_payload(args.config_fd)
    except (OSError, ValueError, TypeError, KeyError, StreamerError) as exc:
        if stop_requested.is_set():
            return 0
        print(f"streamer: cannot read the worker's configuration: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s [worker {config.slot}] %(name)s: %(message)s",
    )
    failure = run_worker(args.spec, config, options, stop_requested, workers)
    if failure is None:
        return 0
    if failure.permanent and args.status_fd is not None:
        # The supervisor says it once, and stops the group: no restart would help.
        report_failure(args.status_fd, failure.reason)
        return EXIT_PERMANENT
    _log_failure(config.slot, failure.error, verbose=options.verbose)
    if args.status_fd is not None:
        report_failure(args.status_fd, failure.reason)
    return EXIT_PERMANENT if failure.permanent else 1


class Failure(NamedTuple):
    """Why a worker stopped, and whether a restart could help at all."""

    reason: str
    permanent: bool
    error: Exception


def _log_failure(slot: str, exc: Exception, *, verbose: bool) -> None:
    if isinstance(exc, StreamerError):
        log.error("worker %s failed: %s", slot, exc, exc_info=verbose)
        return
    log.error(
        "worker %s failed: unexpected %s: %s%s",
        slot,
        type(exc).__name__,
        exc,
        "" if verbose else " (run with -v for the traceback)",
        exc_info=verbose,
    )


def _permanent(exc: StreamerError) -> bool:
    """A wrong configuration or topology, or a cluster that refuses us (authentication,
    TLS, a missing ACL): the next attempt would fail the same way."""
    if isinstance(exc, (KafkaRuntimeError, KafkaAdminError)):
        return exc.denied
    return isinstance(exc, ConfigError)


def run_worker(
    spec: str,
    config: AppConfig,
    options: WorkerOptions,
    stop_requested: threading.Event,
    workers: list[Worker],
) -> Failure | None:
    """Run the worker until stopped; why it failed, or None after a clean stop."""
    with ExitStack() as cleanups:
        try:
            metrics = _metrics(options, cleanups.callback)
            tracing: Tracing | None = tracing_from_env(
                config.app_id, instance_id=config.transactional_id, group=config.app_id
            )
            if tracing is not None:
                cleanups.callback(_quietly, tracing.shutdown)
                log.info("tracing on: exporting spans as the OTEL_* variables say")
            topology = load_topology(spec)
            query = _query_server(topology, config, options, metrics, cleanups.callback)
            if query is not None:
                config = dataclasses.replace(config, query_url=query.url)
                metrics = query.metrics
            worker = Worker(
                topology,
                config,
                group_protocol=options.group_protocol,
                metrics=metrics,
                tracing=tracing,
                wrap_store=None if query is None else query.registry.wrap,
            )
            workers.append(worker)
            if query is not None:
                query.start(lambda: worker.snapshot)
            if not stop_requested.is_set():
                worker.run()
        except StreamerError as exc:
            return Failure(f"{type(exc).__name__}: {exc}", _permanent(exc), exc)
        except Exception as exc:
            return Failure(f"{type(exc).__name__}: {exc}", False, exc)
    return None


def _metrics(
    options: WorkerOptions, on_exit: Callable[[Callable[[], None]], object]
) -> WorkerMetrics | None:
    if options.metrics_port is None:
        return None
    from streamer.runtime.prometheus import serve_metrics

    metrics, stop_metrics = serve_metrics(options.metrics_port, options.metrics_address)
    on_exit(lambda: _quietly(stop_metrics))
    log.info("serving Prometheus metrics on %s:%d", options.metrics_address, options.metrics_port)
    return metrics


def _query_server(
    topology: Topology,
    config: AppConfig,
    options: WorkerOptions,
    metrics: WorkerMetrics | None,
    on_exit: Callable[[Callable[[], None]], object],
) -> QueryServer | None:
    """The worker's query server (bound, not yet serving) when it has an HTTP port."""
    if options.http_port is None:
        return None
    from streamer.query.server import QueryServer

    url = options.advertised_url or f"http://{options.http_address}:{options.http_port}"
    server = QueryServer(
        topology,
        config,
        address=options.http_address,
        port=options.http_port,
        url=url,
        token=options.http_token,
        metrics=metrics,
    )
    on_exit(lambda: _quietly(server.stop))
    return server


def _quietly(cleanup: Callable[[], None]) -> None:
    try:
        cleanup()
    except Exception:
        log.exception("shutting down metrics, tracing or the query server failed")


def report_failure(fd: int, reason: str) -> None:
    """Write ``reason`` as one line (at most 4 KiB) to the supervisor's status pipe."""
    line = " ".join(reason.split())[:4000] + "\n"
    try:
        os.write(fd, line.encode(errors="replace"))
        os.close(fd)
    except OSError:
        pass  # the supervisor is gone; nobody is left to tell


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
