"""Interactive queries: read a running app's state stores over HTTP, from any worker.

A worker started with ``streamer run --http-port P`` serves its stores, its state and a
web console (worker ``i`` on port ``P + i``); any worker answers for any key, forwarding
to the owner of the key's partition (docs/queries.md). This module is the Python client::

    from streamer.query import QueryClient

    client = QueryClient("http://127.0.0.1:8080")                # any worker of the app
    client.get("card-velocity", "card-1")["value"]
    client = QueryClient.for_app("fraud", "127.0.0.1:9092")      # found through the group

Failures raise :class:`QueryError` with the server's status and message: 404 for an unknown
store, 400 for a key that cannot be encoded, 401 for a missing or wrong token, 503 (with
``retry_after``) while the key's partition restores or moves. The client needs the
``query`` extra (``pip install 'streamer[query]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from streamer.errors import StreamerError


class QueryError(StreamerError):
    """A query the server refused or could not answer now."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class QueryClient:
    """Blocking client of one worker's query server (any worker of the app will do)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        try:
            import httpx
        except ImportError:
            msg = "the query client needs the 'query' extra: pip install 'streamer[query]'"
            raise StreamerError(msg) from None
        # httpx logs every request's URL at INFO, and a query's URL holds its key.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def for_app(
        cls,
        app_id: str,
        bootstrap_servers: str,
        *,
        config: Mapping[str, Any] | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> QueryClient:
        """A client of the first member of ``app_id``'s group that serves queries (each
        member publishes its URL in its client id)."""
        from streamer.kafka.groups import GroupAdmin
        from streamer.runtime.client_config import query_url_of

        group = GroupAdmin(bootstrap_servers, config=config, timeout=timeout).describe_group(app_id)
        urls = sorted(u for m in group.members if (u := query_url_of(m.client_id)) is not None)
        if not urls:
            state = f"no members ({group.state.lower()})" if not group.members else "members"
            msg = f"app {app_id!r} has {state} serving queries: start its workers with --http-port"
            raise StreamerError(msg)
        return cls(urls[0], token=token, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QueryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.get(path, params=clean)
        except httpx.HTTPError as exc:
            raise QueryError(0, f"{self.url} did not answer: {exc}") from exc
        if response.status_code != 200:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            retry = response.headers.get("Retry-After")
            raise QueryError(response.status_code, message, float(retry) if retry else None)
        body: dict[str, Any] = response.json()
        return body

    def get(self, store: str, key: str, *, encoding: str = "text") -> dict[str, Any]:
        """``{"found", "value", "partition", "served_by", ...}`` of ``key``."""
        return self._get(f"/api/v1/stores/{store}/get", {"key": key, "encoding": encoding})

    def range(
        self,
        store: str,
        *,
        start: str | None = None,
        end: str | None = None,
        prefix: str | None = None,
        limit: int = 100,
        after: str | None = None,
        encoding: str = "text",
    ) -> dict[str, Any]:
        """One page of keys in ``[start, end)`` (or with ``prefix``): ``rows`` and ``next``,
        the cursor to pass as ``after`` for the next page (None after the last)."""
        params = {"from": start, "to": end, "prefix": prefix, "limit": limit, "after": after}
        return self._get(f"/api/v1/stores/{store}/range", {**params, "encoding": encoding})

    def scan(self, store: str, **bounds: Any) -> Iterator[dict[str, Any]]:
        """Every row of :meth:`range`, page after page."""
        after = None
        while True:
            page = self.range(store, after=after, **bounds)
            yield from page["rows"]
            after = page["next"]
            if after is None:
                return

    def windows(
        self, store: str, key: str, time_from: int, time_to: int, *, encoding: str = "text"
    ) -> list[dict[str, Any]]:
        """The key's windows with a start in ``[time_from, time_to]``: ``start``, ``value``."""
        params = {"key": key, "from": time_from, "to": time_to, "encoding": encoding}
        rows: list[dict[str, Any]] = self._get(f"/api/v1/stores/{store}/windows", params)["rows"]
        return rows

    def sessions(
        self, store: str, key: str, time_from: int, time_to: int, *, encoding: str = "text"
    ) -> list[dict[str, Any]]:
        """The key's sessions overlapping ``[time_from, time_to]``: ``start``, ``end``,
        ``value``."""
        params = {"key": key, "from": time_from, "to": time_to, "encoding": encoding}
        rows: list[dict[str, Any]] = self._get(f"/api/v1/stores/{store}/sessions", params)["rows"]
        return rows

    def app(self) -> dict[str, Any]:
        """The app's id and topology (sub-topologies, steps, stores and topics)."""
        return self._get("/api/v1/app")

    def worker(self) -> dict[str, Any]:
        """The worker's counts, tasks and their restore progress."""
        return self._get("/api/v1/worker")

    def overview(self) -> dict[str, Any]:
        """The whole app: topology, every member's worker view, lag."""
        return self._get("/api/v1/overview")


__all__ = ["QueryClient", "QueryError"]
