"""Serde benchmark: encode and decode rates (records/s) of one typical card transaction.

    python -m benchmarks.serde [--records 200000] [--repeat 5]

Measures each serde in-process, single-threaded, on the same record, best of ``--repeat``
runs. No broker or registry is involved: the registry serde's schema id is already cached
after its first record, as it is in a running application, so a stub client stands in.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro

from streamer.serde import (
    AvroSchema,
    AvroSerde,
    JsonSerde,
    RawAvroSerde,
    RegistryAvroSerde,
    SchemaRegistryClient,
    StdlibJsonSerde,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "topologies" / "schemas" / "transaction.avsc"
TRANSACTION: dict[str, Any] = {
    "id": "tx-00000042",
    "card": "card-000017",
    "amount": 42.5,
    "currency": "EUR",
    "merchant": "merchant-0312",
    "country": "FR",
    "lat": 48.85,
    "lon": 2.35,
    "ts": 1718000000000,
}


class _CachedRegistry(SchemaRegistryClient):
    """A client whose only schema is already cached (id 1), as after the first record."""

    def __init__(self, schema: AvroSchema) -> None:
        super().__init__("http://127.0.0.1:9")
        self._by_id[1] = schema.text
        self._ids[("transactions-value", schema.text)] = 1


def _rate(fn: Callable[[], Any], records: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(records):
            fn()
        best = min(best, time.perf_counter() - started)
    return records / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    schema = AvroSchema.load(SCHEMA_PATH)
    serdes: list[tuple[str, Any]] = [
        ("JSON, standard library (json)", StdlibJsonSerde()),
        ("JSON, orjson (JsonSerde)", JsonSerde()),
        ("Avro, raw body (RawAvroSerde)", RawAvroSerde(schema)),
        ("Avro, single-object (AvroSerde)", AvroSerde(schema)),
        (
            "Avro, Confluent wire format (RegistryAvroSerde)",
            RegistryAvroSerde(_CachedRegistry(schema), schema, topic="transactions"),
        ),
    ]
    print(
        f"Python {platform.python_version()}, fastavro {fastavro.__version__}, "
        f"{args.records} records, best of {args.repeat}"
    )
    print(f"{'serde':<50} {'bytes':>6} {'encode/s':>12} {'decode/s':>12}")
    for name, serde in serdes:
        data = serde.encode(TRANSACTION)
        decoded = serde.decode(data)
        assert decoded == TRANSACTION, (name, decoded)
        encode = _rate(functools.partial(serde.encode, TRANSACTION), args.records, args.repeat)
        decode = _rate(functools.partial(serde.decode, data), args.records, args.repeat)
        print(f"{name:<50} {len(data):>6} {encode:>12,.0f} {decode:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
