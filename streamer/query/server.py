"""The query server of one worker process: uvicorn serving :mod:`streamer.query.app` on a
thread of its own.

Order in a worker process (:mod:`streamer.runtime.child`):

1. :class:`QueryServer` is built before the worker: it binds its socket (a port in use is
   a :class:`~streamer.errors.ConfigError` at once) and provides the store opener and the
   metrics hook the worker is built with;
2. :meth:`QueryServer.start` starts serving, with the worker's published snapshot;
3. :meth:`QueryServer.stop` ends it after the worker stopped.

The server thread reads only the worker's published snapshots and, through the store
registry, its committed stores; it never touches a task.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from streamer.errors import ConfigError
from streamer.query.metrics import LatencyMetrics
from streamer.query.stores import StoreRegistry
from streamer.runtime.config import AppConfig
from streamer.runtime.metrics import WorkerMetrics, WorkerSnapshot
from streamer.topology.graph import Topology

log = logging.getLogger(__name__)

EXTRA_MISSING = (
    "serving queries (--http-port) needs the 'query' extra: pip install 'streamer[query]'"
)


def require_query_extra() -> None:
    """Raise a :class:`ConfigError` saying what to install when the server's libraries
    (starlette, uvicorn, httpx) are missing."""
    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        msg = f"{EXTRA_MISSING} ({exc})"
        raise ConfigError(msg) from None


def bind(address: str, port: int) -> socket.socket:
    """A listening TCP socket on ``address:port``; a :class:`ConfigError` naming it if not."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP by name: asyncio turns Nagle's algorithm off only on such sockets (and on
    # the connections accepted from them); with it on, a response written in two parts
    # waits for the client's delayed ACK, ~40 ms per request on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((address, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        msg = f"the query server cannot listen on {address}:{port}: {exc.strerror}"
        raise ConfigError(msg) from None
    sock.set_inheritable(False)
    return sock


class QueryServer:
    """One worker's query server; see the module docstring for the order of calls."""

    def __init__(
        self,
        topology: Topology,
        config: AppConfig,
        *,
        address: str,
        port: int,
        url: str,
        token: str | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        require_query_extra()
        # httpx logs every request with its URL, and a query's URL holds its key.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.topology = topology
        self.config = config
        self.url = url
        self.token = token
        self.registry = StoreRegistry()
        self.metrics = LatencyMetrics(metrics)
        self._socket = bind(address, port)
        self.port = int(self._socket.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, snapshot: Callable[[], WorkerSnapshot], *, wait: float = 10.0) -> None:
        """Serve until :meth:`stop`; returns once the server accepts requests."""
        import uvicorn

        from streamer.query.app import build_app
        from streamer.query.cluster import KafkaClusterView
        from streamer.query.routing import Locator
        from streamer.query.service import QueryService

        cluster = KafkaClusterView(self.config, self.topology)
        service = QueryService(
            locator=Locator(self.topology, self.config.prefix, cluster),
            registry=self.registry,
            snapshot=snapshot,
            url=self.url,
            latency=self.metrics,
        )
        app = build_app(
            service,
            self.topology,
            self.config.prefix,
            cluster=cluster,
            token=self.token,
            dlq_topic=self.config.dlq_topic,
        )
        settings = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", log_level="warning"
        )
        self._server = uvicorn.Server(settings)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="streamer-query",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                msg = f"the query server did not start within {wait} s"
                raise ConfigError(msg)
            time.sleep(0.01)
        if not self._server.started:
            msg = "the query server failed to start (see the log above)"
            raise ConfigError(msg)
        log.info("serving queries and the console at %s", self.url)

    def stop(self) -> None:
        """Stop serving (requests in progress finish) and close the socket."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10.0)
        self._socket.close()


__all__ = ["EXTRA_MISSING", "QueryServer", "bind", "require_query_extra"]
