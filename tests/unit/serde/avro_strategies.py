"""Hypothesis strategies: random Avro schemas, and random values of a given schema."""

from __future__ import annotations

import datetime
import decimal
import itertools
from typing import Any

from hypothesis import strategies as st

PRIMITIVE_LEAVES = ("boolean", "int", "long", "float", "double", "bytes", "string")
LOGICAL_LEAVES = (
    {"type": "long", "logicalType": "timestamp-millis"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "int", "logicalType": "date"},
    {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
)
_IDENTIFIER = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)


@st.composite
def schemas(draw: st.DrawFn, max_depth: int = 3) -> dict[str, Any]:
    """A random record schema. Every type consumes at least one byte (no bare ``null``
    outside unions), so random bytes can never make a decoder loop without input."""
    counter = itertools.count()

    def name(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def leaf() -> Any:
        kind = draw(st.sampled_from(("primitive", "primitive", "logical", "enum", "fixed")))
        if kind == "primitive":
            return draw(st.sampled_from(PRIMITIVE_LEAVES))
        if kind == "logical":
            return dict(draw(st.sampled_from(LOGICAL_LEAVES)))
        if kind == "enum":
            symbols = draw(
                st.lists(
                    st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True),
                    min_size=1,
                    max_size=4,
                    unique=True,
                )
            )
            return {"type": "enum", "name": name("E"), "symbols": symbols}
        return {"type": "fixed", "name": name("F"), "size": draw(st.integers(1, 6))}

    def any_type(depth: int, *, union: bool = True) -> Any:
        if depth <= 0:
            return leaf()
        kinds = ("leaf", "leaf", "array", "map", "record") + (("optional",) if union else ())
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            return leaf()
        if kind == "array":
            return {"type": "array", "items": any_type(depth - 1)}
        if kind == "map":
            return {"type": "map", "values": any_type(depth - 1)}
        if kind == "optional":  # unions may not hold unions
            return ["null", any_type(depth - 1, union=False)]
        return record(depth - 1)

    def record(depth: int) -> dict[str, Any]:
        names = draw(st.lists(_IDENTIFIER, min_size=1, max_size=4, unique=True))
        return {
            "type": "record",
            "name": name("R"),
            "fields": [{"name": n, "type": any_type(depth)} for n in names],
        }

    return record(max_depth)


def _named(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        named.setdefault(schema["name"], schema)
    if isinstance(schema, str) and schema in named:
        return named[schema]
    return schema


def values(schema: Any, named: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values of ``schema`` (as written by :func:`schemas`) that survive an Avro round trip
    unchanged: float32 values for ``float``, millisecond datetimes in UTC, and so on."""
    named = {} if named is None else named
    schema = _named(schema, named)
    if isinstance(schema, list):
        return st.one_of([values(branch, named) for branch in schema])
    if isinstance(schema, str):
        return _PRIMITIVE_VALUES[schema]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        return st.datetimes(
            min_value=datetime.datetime(1900, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
            max_value=datetime.datetime(2200, 1, 1),  # noqa: DTZ001
            timezones=st.just(datetime.UTC),
        ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
    if logical == "uuid":
        return st.uuids()
    if logical == "date":
        return st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 1, 1))
    if logical == "decimal":
        limit = 10 ** schema["precision"] - 1
        return st.integers(-limit, limit).map(lambda n: decimal.Decimal(n).scaleb(-schema["scale"]))
    kind = schema["type"]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), values(schema["values"], named), max_size=3)
    if kind == "record":
        return st.fixed_dictionaries(
            {field["name"]: values(field["type"], named) for field in schema["fields"]}
        )
    if isinstance(kind, str) and kind in _PRIMITIVE_VALUES:
        return _PRIMITIVE_VALUES[kind]
    raise ValueError(f"no strategy for {schema!r}")


_PRIMITIVE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=12),
    "string": st.text(max_size=12),
}


@st.composite
def schema_and_value(draw: st.DrawFn, max_depth: int = 3) -> tuple[dict[str, Any], Any]:
    schema = draw(schemas(max_depth))
    return schema, draw(values(schema))


PROMOTIONS = {"int": "long", "float": "double", "string": "bytes"}


@st.composite
def evolutions(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], Any, Any]:
    """``(writer, reader, value, expected)``: a reader schema that drops some of the
    writer's fields, promotes some (int to long, float to double, string to bytes) and adds
    fields with defaults; ``expected`` is ``value`` as read with the reader schema."""
    writer = draw(schemas(max_depth=2))
    value = draw(values(writer))
    fields: list[dict[str, Any]] = []
    expected: dict[str, Any] = {}
    for field in writer["fields"]:
        action = draw(st.sampled_from(("keep", "drop", "promote")))
        if action == "drop":
            continue
        kind = field["type"]
        if action == "promote" and isinstance(kind, str) and kind in PROMOTIONS:
            fields.append({"name": field["name"], "type": PROMOTIONS[kind]})
            old = value[field["name"]]
            expected[field["name"]] = old.encode() if kind == "string" else old
        else:
            fields.append(field)
            expected[field["name"]] = value[field["name"]]
    for n in range(draw(st.integers(0, 2))):
        default = draw(st.one_of(st.none(), st.integers(-100, 100)))
        kind = ["null", "long"] if default is None else "long"
        fields.insert(
            draw(st.integers(0, len(fields))),
            {"name": f"Added{n}", "type": kind, "default": default},
        )
        expected[f"Added{n}"] = default
    reader = {"type": "record", "name": writer["name"], "fields": fields}
    return writer, reader, value, expected
