"""Pieces of the query server: key encodings, advertised URLs, client ids, the store
registry's read/close exclusion, latency percentiles."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from streamer.errors import ConfigError
from streamer.query.metrics import percentile
from streamer.query.reads import BadKey, encode_key
from streamer.query.stores import StoreRegistry, StoreUnavailable
from streamer.runtime.client_config import member_client_id, member_name, query_url_of
from streamer.runtime.config import AppConfig
from streamer.runtime.launch import worker_url
from streamer.serde import JsonSerde, LongSerde, StringSerde
from streamer.state import MemoryStore
from streamer.topology.nodes import StoreKind, StoreSpec


def spec(key_serde: object) -> StoreSpec:
    return StoreSpec("s", StoreKind.KEY_VALUE, key_serde, LongSerde())  # type: ignore[arg-type]


def test_keys_are_encoded_by_the_stores_key_serde_or_given_as_bytes() -> None:
    assert encode_key(spec(StringSerde()), "card-1", "text") == b"card-1"
    assert encode_key(spec(LongSerde()), "42", "text") == (42).to_bytes(8, "big")
    assert encode_key(spec(JsonSerde()), '{"a": 1}', "json") == b'{"a":1}'
    assert encode_key(spec(StringSerde()), "Y2FyZA==", "base64") == b"card"
    assert encode_key(spec(StringSerde()), "6361", "hex") == b"ca"
    with pytest.raises(BadKey, match="not valid base64"):
        encode_key(spec(StringSerde()), "%%", "base64")
    with pytest.raises(BadKey, match="unknown key encoding 'utf16'"):
        encode_key(spec(StringSerde()), "a", "utf16")
    with pytest.raises(BadKey, match="LongSerde keys, and the key is not valid JSON"):
        encode_key(spec(LongSerde()), "card-1", "text")


def test_each_worker_advertises_its_own_port() -> None:
    assert worker_url(None, "127.0.0.1", 8081, 1) == "http://127.0.0.1:8081"
    assert worker_url("http://10.0.0.5:9000", "0.0.0.0", 8082, 2) == "http://10.0.0.5:9002"
    assert worker_url("https://q.example/app/", "0.0.0.0", 8082, 2) == "https://q.example:8082/app"
    assert not worker_url(None, "0.0.0.0", 8080, 0).startswith("http://0.0.0.0")
    for bad in ("10.0.0.5:9000", "ftp://h:1", "http://h:99999"):
        with pytest.raises(ConfigError, match="advertised URL must be"):
            worker_url(bad, "127.0.0.1", 8080, 0)


def test_a_member_publishes_its_url_in_its_client_id() -> None:
    config = AppConfig("app", "b:9092", instance=3, query_url="http://h:8083")
    client_id = member_client_id(config)
    assert client_id == "app-3|http://h:8083"
    assert (member_name(client_id), query_url_of(client_id)) == ("app-3", "http://h:8083")
    plain = member_client_id(AppConfig("app", "b:9092"))
    assert (plain, query_url_of(plain), member_name(plain)) == ("app-0", None, "app-0")


def test_a_store_closes_only_after_the_read_in_progress(tmp_path: Path) -> None:
    registry = StoreRegistry()
    store = registry.wrap(tmp_path / "0_1" / "counts", "counts", MemoryStore("counts"))
    store.put(b"k", b"v")
    reading, closed = threading.Event(), threading.Event()
    release = threading.Event()

    def read() -> None:
        with registry.reading("0_1", "counts") as inner:
            reading.set()
            release.wait(10)
            assert inner.get(b"k") == b"v"

    def close() -> None:
        store.close()
        closed.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(10)
    closer = threading.Thread(target=close)
    closer.start()
    assert not closed.wait(0.2)  # blocked by the read
    release.set()
    reader.join(10)
    assert closed.wait(10)
    closer.join(10)
    assert registry.tasks() == set()
    with (
        pytest.raises(StoreUnavailable, match="not open on this worker"),
        registry.reading("0_1", "counts"),
    ):
        pass


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0
