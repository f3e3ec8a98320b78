"""Answering a query here, or forwarding it to the member that owns its partition.

For one partition (:meth:`Router.decide`): this worker answers when it runs the task
(:meth:`~streamer.query.service.QueryService.state`); a task restoring here gets 503 with
``Retry-After`` and its restore progress; otherwise the owner's URL is read from the
group description, and the request is forwarded there with the caller's token and the
``X-Streamer-Forwarded`` header. When the answer would be 503 (no owner now, the owner
restoring or unreachable) and this worker keeps a standby copy of the task, the copy
answers a single-key read instead, marked ``"stale": true`` with its ``lag`` in changelog
records. A forwarded request is never forwarded again: a member
that receives one for a partition it cannot serve answers 503 (the partition is moving),
so two members with different views of the group cannot bounce a request between them.
A range scan asks every partition's owner (in parallel) and merges their pages by key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from streamer.errors import StreamerError
from streamer.query import reads
from streamer.query.routing import Place
from streamer.query.service import QueryService
from streamer.query.stores import StoreUnavailable
from streamer.state import prefix_upper_bound

FORWARDED = "x-streamer-forwarded"
RETRY_AFTER_S = 1


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def unavailable(message: str, **extra: Any) -> JSONResponse:
    """503 with ``Retry-After``: the answer exists, but not here and now."""
    return error(503, message, headers={"Retry-After": str(RETRY_AFTER_S)}, **extra)


class Router:
    """Routes the queries of one worker's server; ``client`` is set by the app's lifespan."""

    def __init__(self, service: QueryService, *, token: str | None) -> None:
        self.service = service
        self.token = token
        self.client: httpx.AsyncClient | None = None

    def _headers(self) -> dict[str, str]:
        headers = {FORWARDED: self.service.url}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def decide(self, request: Request, place: Place) -> str | Response | None:
        """None: answer here; a URL: forward there; a response: answer with it (503)."""
        state = self.service.state(place.task)
        if state.state == "running":
            return None
        where = f"partition {place.partition} of {place.topic} (task {place.task})"
        if state.state == "restoring":
            return unavailable(f"{where} is restoring; try again", restore=state.restore)
        if FORWARDED in request.headers:
            return unavailable(f"{where} is not served by {self.service.url}: it is moving")
        locate = self.service.locator.owner_url
        try:
            url = await run_in_threadpool(locate, place.topic, place.partition)
            if url is None or url == self.service.url:
                fresh = partial(locate, fresh=True)
                url = await run_in_threadpool(fresh, place.topic, place.partition)
        except StreamerError as exc:
            return unavailable(f"cannot read the group's members: {exc}")
        if url is None:
            return unavailable(f"no member serving queries owns {where} now (rebalancing?)")
        if url == self.service.url:
            return unavailable(f"{where} is assigned to this worker, which is opening it")
        return url

    async def forward(self, request: Request, url: str, params: Any = None) -> Response:
        assert self.client is not None, "the app's lifespan sets the client"
        target = f"{url}{request.url.path}"
        try:
            answer = await self.client.get(
                target,
                params=params if params is not None else request.query_params,
                headers=self._headers(),
            )
        except httpx.HTTPError as exc:
            return unavailable(f"the owner at {url} did not answer ({type(exc).__name__})")
        headers = {
            k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "content-type")
        }
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    async def by_key(
        self, request: Request, kind: str, read: Callable[[Place, bytes], dict[str, Any]]
    ) -> Response:
        """One key of a ``kind`` store: read here, forwarded, or 503."""
        name = request.path_params["store"]
        spec, _sub = self.service.locator.store(name)
        if spec.kind.value != kind:
            route = {"key-value": "get or range", "window": "windows", "session": "sessions"}
            kind_of = spec.kind.value
            msg = f"store {name!r} is a {kind_of} store: query it with /{route.get(kind_of)}"
            if kind_of not in route:
                msg = f"store {name!r} is a {kind_of} store, which queries cannot read yet"
            raise reads.BadKey(msg)
        text = request.query_params.get("key")
        if text is None:
            msg = "the key parameter is required (?key=...&encoding=text|json|base64|hex)"
            raise reads.BadKey(msg)
        key = reads.encode_key(spec, text, request.query_params.get("encoding", "text"))
        try:
            place = await run_in_threadpool(self.service.locator.place, name, key)
        except StreamerError as exc:
            return unavailable(f"cannot read the partition count: {exc}")
        decision = await self.decide(request, place)
        if decision is None:
            return await self._read(read, place, key)
        answer = (
            decision if isinstance(decision, Response) else await self.forward(request, decision)
        )
        if answer.status_code == 503 and FORWARDED not in request.headers:
            # The active task cannot answer now: a standby copy here answers, marked stale.
            state = self.service.state(place.task)
            if state.state == "standby" and state.lag is not None:
                return await self._read(self.service.stale(read, state.lag), place, key)
        return answer

    async def _read(
        self, read: Callable[[Place, bytes], dict[str, Any]], place: Place, key: bytes
    ) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(read, place, key))
        except StoreUnavailable as exc:
            return unavailable(str(exc))

    async def scan(self, request: Request) -> Response:
        """A key-value store's keys in a range or with a prefix, over every partition."""
        name = request.path_params["store"]
        spec, _sub = self.service.locator.store(name)
        if spec.kind.value != "key-value":
            msg = f"store {name!r} is a {spec.kind.value} store: range needs a key-value store"
            raise reads.BadKey(msg)
        params = request.query_params
        start, end = _bounds(spec, params)
        after = None if params.get("after") is None else reads.decode_cursor(params["after"])
        limit = _limit(params)
        try:
            places = await run_in_threadpool(self.service.locator.places, name)
        except StreamerError as exc:
            return unavailable(f"cannot read the partition count: {exc}")
        if FORWARDED in request.headers and params.get("partitions"):
            wanted = _partitions(params["partitions"])
            places = [p for p in places if p.partition in wanted]
        local: list[Place] = []
        remote: dict[str, list[int]] = {}
        for place in places:
            decision = await self.decide(request, place)
            if isinstance(decision, Response):
                return decision
            if decision is None:
                local.append(place)
            else:
                remote.setdefault(decision, []).append(place.partition)
        rows: list[tuple[bytes, dict[str, Any]]] = []
        more = False
        for place in local:
            try:
                raw = await run_in_threadpool(self.service.scan, place, start, end, after, limit)
            except StoreUnavailable as exc:
                return unavailable(str(exc))
            more = more or len(raw) >= limit
            rows += [(k, reads.row(spec, k, v)) for k, v in raw]
        answers = await asyncio.gather(
            *(self._remote_page(request, url, parts) for url, parts in remote.items())
        )
        for answer in answers:
            if isinstance(answer, Response):
                return answer
            more = more or bool(answer.get("more"))
            rows += [(reads.decode_cursor(r["cursor"]), r) for r in answer["rows"]]
        rows.sort(key=lambda pair: pair[0])
        more = more or len(rows) > limit
        page = [r for _k, r in rows[:limit]]
        return JSONResponse(
            {
                "store": name,
                "rows": page,
                "more": more,
                "next": page[-1]["cursor"] if more and page else None,
                "served_by": self.service.url,
                "stale": False,
            }
        )

    async def _remote_page(
        self, request: Request, url: str, partitions: list[int]
    ) -> dict[str, Any] | Response:
        params = dict(request.query_params)
        params["partitions"] = ",".join(str(p) for p in partitions)
        answer = await self.forward(request, url, params)
        if answer.status_code != 200:
            return answer
        body: dict[str, Any] = json.loads(bytes(answer.body))
        return body

    async def workers(self, request: Request) -> list[dict[str, Any]]:
        """Every member's worker view: this one's, and the others' asked in parallel."""
        own = self.service.worker()
        try:
            urls = await run_in_threadpool(self.service.locator.member_urls)
        except StreamerError as exc:
            return [own, {"error": f"cannot read the group's members: {exc}"}]
        others = sorted({u for u in urls.values() if u != self.service.url})
        views = await asyncio.gather(*(self._worker(u) for u in others))
        return [own, *views]

    async def _worker(self, url: str) -> dict[str, Any]:
        assert self.client is not None
        try:
            answer = await self.client.get(
                f"{url}/api/v1/worker", headers=self._headers(), timeout=2.0
            )
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            return {"url": url, "error": f"did not answer ({type(exc).__name__})"}
        view: dict[str, Any] = answer.json()
        return view


def _bounds(spec: Any, params: Mapping[str, str]) -> tuple[bytes | None, bytes | None]:
    encoding = params.get("encoding", "text")
    prefix = params.get("prefix")
    if prefix is not None:
        if params.get("from") is not None or params.get("to") is not None:
            msg = "give either prefix, or from and to, not both"
            raise reads.BadKey(msg)
        start = reads.encode_key(spec, prefix, encoding)
        return start, prefix_upper_bound(start)
    lower = params.get("from")
    upper = params.get("to")
    return (
        None if lower is None else reads.encode_key(spec, lower, encoding),
        None if upper is None else reads.encode_key(spec, upper, encoding),
    )


def _partitions(text: str) -> set[int]:
    try:
        return {int(p) for p in text.split(",")}
    except ValueError:
        msg = "partitions must be a comma-separated list of partition numbers"
        raise reads.BadKey(msg) from None


def _limit(params: Mapping[str, str]) -> int:
    text = params.get("limit", "100")
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= reads.MAX_LIMIT:
        msg = f"limit must be an integer from 1 to {reads.MAX_LIMIT}, got {text[:20]!r}"
        raise reads.BadKey(msg)
    return limit


__all__ = ["FORWARDED", "Router", "error", "unavailable"]
