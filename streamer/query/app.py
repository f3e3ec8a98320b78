"""The query server's HTTP application (Starlette): read-only JSON, and the console.

Routes (every one a ``GET``; nothing changes anything):

======================================  ================================================
``/``                                   the console (static page, polls the API)
``/api/v1/health``                      ``{"ok": true}`` (no token needed)
``/api/v1/app``                         the topology, as the console draws it
``/api/v1/worker``                      this worker: counts, tasks and their restores
``/api/v1/overview``                    the app: every member's worker view, lag
``/api/v1/stores/{store}/get``          a key-value store's value of ``key``
``/api/v1/stores/{store}/range``        keys in ``[from, to)``, or with ``prefix``, paged
``/api/v1/stores/{store}/windows``      a window store's windows of ``key`` in a time span
``/api/v1/stores/{store}/sessions``     a session store's sessions of ``key`` in a span
``/api/v1/topics/{topic}/last``         the last records of an output topic (or the DLQ)
======================================  ================================================

Statuses: 404 for an unknown store or topic, 400 for a key, bound or parameter that cannot
be read (the message says why), 401 without the right bearer token, 503 with
``Retry-After`` while a partition restores or moves. A key another member owns is
forwarded to it (:mod:`streamer.query.forward`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from streamer.query import reads
from streamer.query.cluster import KafkaClusterView
from streamer.query.forward import Router, error, unavailable
from streamer.query.routing import UnknownStore, UnroutableKey
from streamer.query.service import QueryService
from streamer.query.topology import topology_graph
from streamer.topology.graph import Topology
from streamer.topology.nodes import SinkNode

OPEN_PATHS = ("/api/v1/health",)


class BearerToken:
    """Refuses ``/api/`` requests without ``Authorization: Bearer <token>`` (401). The page
    and its assets are served to anyone: they hold no data, and the page asks for the
    token. Tokens are compared in constant time and never logged."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            self.expected is not None
            and scope["type"] == "http"
            and path.startswith("/api/")
            and path not in OPEN_PATHS
        ):
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                text = "a bearer token is required" if not given else "wrong bearer token"
                response = error(401, text, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Api:
    """The endpoints of one worker's server; stateless beyond what it is built with."""

    def __init__(
        self,
        service: QueryService,
        topology: Topology,
        prefix: str,
        cluster: KafkaClusterView | None,
        router: Router,
        dlq_topic: str | None,
    ) -> None:
        self.service = service
        self.cluster = cluster
        self.router = router
        self.graph = topology_graph(topology, prefix)
        self.sinks = {
            ref.resolve(prefix): n
            for n in topology.nodes
            if isinstance(n, SinkNode)
            for ref in n.topic_refs()
        }
        self.readable = set(self.graph["output_topics"]) | ({dlq_topic} if dlq_topic else set())
        self.static = resources.files("streamer.query") / "static"

    async def console(self, _request: Request) -> Response:
        return FileResponse(str(self.static / "console.html"), media_type="text/html")

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def app_info(self, _request: Request) -> Response:
        app_id = self.service.snapshot().info.app_id
        return JSONResponse({"app_id": app_id, "topology": self.graph})

    async def worker(self, _request: Request) -> Response:
        return JSONResponse(self.service.worker())

    async def overview(self, request: Request) -> Response:
        workers = await self.router.workers(request)
        lag: dict[str, Any] = {"error": "no cluster to ask"}
        if self.cluster is not None:
            try:
                lag = await run_in_threadpool(self.cluster.lag)
            except Exception as exc:
                lag = {"error": f"{type(exc).__name__}: {exc}"}
        return JSONResponse(
            {
                "app_id": self.service.snapshot().info.app_id,
                "served_by": self.service.url,
                "time": time.time(),
                "topology": self.graph,
                "workers": workers,
                "lag": lag,
            }
        )

    async def store_get(self, request: Request) -> Response:
        return await self.router.by_key(request, "key-value", self.service.get)

    async def store_windows(self, request: Request) -> Response:
        return await self.router.by_key(request, "window", self._timed(request))

    async def store_sessions(self, request: Request) -> Response:
        return await self.router.by_key(request, "session", self._timed(request))

    def _timed(self, request: Request) -> Any:
        params = request.query_params
        span = (_int(params, "from", -(2**63)), _int(params, "to", 2**63 - 1))
        limit = _limit(params)
        return lambda place, key: self.service.timed(place, key, span, limit)

    async def store_range(self, request: Request) -> Response:
        return await self.router.scan(request)

    async def topic_last(self, request: Request) -> Response:
        topic = request.path_params["topic"]
        if self.cluster is None or topic not in self.readable:
            shown = ", ".join(sorted(self.readable)) or "none"
            return error(404, f"not an output topic of this app: {topic!r} (its topics: {shown})")
        limit = min(_int(request.query_params, "limit", 20), 200)
        try:
            records = await run_in_threadpool(self.cluster.last_records, topic, limit)
        except Exception as exc:
            return unavailable(f"reading {topic!r} failed: {exc}")
        sink = self.sinks.get(topic)
        rows = [
            {
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "key": None if r.key is None else _decode(sink, "key_serde", r.key),
                "value": None if r.value is None else _decode(sink, "value_serde", r.value),
            }
            for r in records
        ]
        return JSONResponse({"topic": topic, "records": rows})


def build_app(
    service: QueryService,
    topology: Topology,
    prefix: str,
    *,
    cluster: KafkaClusterView | None = None,
    token: str | None = None,
    dlq_topic: str | None = None,
) -> ASGIApp:
    """The ASGI application of one worker's query server."""
    router = Router(service, token=token)
    api = _Api(service, topology, prefix, cluster, router, dlq_topic)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            router.client = client
            yield

    app = Starlette(
        routes=[
            Route("/", api.console),
            Mount("/static", app=StaticFiles(directory=str(api.static)), name="static"),
            Route("/api/v1/health", api.health),
            Route("/api/v1/app", api.app_info),
            Route("/api/v1/worker", api.worker),
            Route("/api/v1/overview", api.overview),
            Route("/api/v1/stores/{store}/get", api.store_get),
            Route("/api/v1/stores/{store}/range", api.store_range),
            Route("/api/v1/stores/{store}/windows", api.store_windows),
            Route("/api/v1/stores/{store}/sessions", api.store_sessions),
            Route("/api/v1/topics/{topic}/last", api.topic_last),
        ],
        exception_handlers={
            UnknownStore: lambda _r, exc: error(404, str(exc)),
            reads.BadKey: lambda _r, exc: error(400, str(exc)),
            UnroutableKey: lambda _r, exc: error(400, str(exc)),
        },
        lifespan=lifespan,
    )
    return BearerToken(app, token)


def _int(params: Any, name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        msg = f"{name} must be an integer (milliseconds or a count), got {text[:40]!r}"
        raise reads.BadKey(msg) from None


def _limit(params: Any) -> int:
    limit = _int(params, "limit", 100)
    if not 1 <= limit <= reads.MAX_LIMIT:
        msg = f"limit must be 1 to {reads.MAX_LIMIT}, got {limit}"
        raise reads.BadKey(msg)
    return limit


def _decode(sink: Any, serde: str, data: bytes) -> Any:
    if sink is None:
        return reads.jsonable(data)
    return reads.decoded(getattr(sink, serde), data)


__all__ = ["BearerToken", "build_app"]
