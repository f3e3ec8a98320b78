"""The query server refuses to read a versioned store, with a clear 400 (not a 500)."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from streamer import HistoryRetention, StreamsBuilder
from streamer.query.app import build_app
from streamer.query.routing import Locator
from streamer.query.service import QueryService
from streamer.query.stores import StoreRegistry
from streamer.runtime.metrics import WorkerInfo, WorkerSnapshot
from tests.unit.query.test_query_app import ME, TOKEN, FakeCluster


def test_a_versioned_store_is_not_readable_by_key_or_range() -> None:
    builder = StreamsBuilder()
    builder.table("in", name="prices", versioned=HistoryRetention(60_000)).to_stream().to("out")
    topology = builder.build()
    service = QueryService(
        locator=Locator(topology, "app", FakeCluster({0: ME, 1: ME})),
        registry=StoreRegistry(),
        snapshot=lambda: WorkerSnapshot(WorkerInfo("app", "0", "exactly-once")),
        url=ME,
    )
    app = build_app(service, topology, "app", token=TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        by_key = client.get("/api/v1/stores/prices/get", params={"key": "a"})
        assert by_key.status_code == 400
        assert by_key.json()["error"] == (
            "store 'prices' is a versioned store, which queries cannot read yet"
        )
        scan = client.get("/api/v1/stores/prices/range")
        assert scan.status_code == 400
        assert "range needs a key-value store" in scan.json()["error"]
