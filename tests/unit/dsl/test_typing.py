"""``Stream[K, V]`` and ``Table[K, V]`` let mypy check the functions given to each step.

Each snippet line marked ``# error`` must draw a mypy error, and no other line may: so a
wrongly typed lambda is caught, and correctly typed pipelines (and untyped ones, straight from
``builder.stream()``) pass.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[3]

GOOD = """
from streamer import GlobalTable, Stream, StreamsBuilder, Table, TumblingWindows, Windowed


def pipeline(
    s: Stream[str, int], t: Table[str, float], g: GlobalTable[int, str]
) -> Stream[str, str]:
    positive = s.filter(lambda k, v: v > 0)
    priced = positive.join(t, lambda n, price: n * price, name="priced")
    named = s.left_join(g, lambda n, label: label or str(n), name="g", key_selector=lambda k, v: v)
    swapped: Stream[int, str] = s.map(lambda k, v: (v, k))
    counts: Table[str, int] = s.group_by_key().count(name="c")
    total: Table[str, float] = s.group_by_key().aggregate(
        lambda: 0.0, lambda k, v, agg: agg + v, name="t"
    )
    windowed: Table[Windowed, int] = (
        s.group_by_key().windowed_by(TumblingWindows(10)).reduce(lambda a, b: a + b, name="w")
    )
    del named, swapped, counts, total, windowed
    return priced.map_values(lambda v: f"{v:.2f}")


def foreign_key_join(orders: Table[str, int], names: Table[int, str]) -> Table[str, str]:
    return orders.join(names, lambda n, name: name * n, foreign_key=lambda n: n, name="fk")


untyped = StreamsBuilder().stream("in").map_values(lambda v: v["x"]).filter(lambda k, v: v)
"""

BAD = """
from streamer import Stream, Table


def pipeline(s: Stream[str, int], t: Table[int, str]) -> None:
    s.filter(lambda k, v: v.startswith("a"))  # error
    s.filter(lambda k, v: "yes")  # error
    out: Stream[str, str] = s.map_values(lambda v: v + 1)  # error
    s.join(t, lambda a, b: (a, b), name="j")  # error
    s.map(lambda k, v: (v, k)).filter(lambda k, v: k.upper() == v)  # error
    t.map_values(lambda v: v + 1)  # error
    s.group_by_key().reduce(lambda a, b: str(a + b), name="r")  # error
    del out


def foreign_key(orders: Table[str, int], names: Table[int, str]) -> None:
    orders.join(names, lambda n, name: name, foreign_key=lambda n: str(n), name="fk")  # error
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, str]]:
    """Mypy's errors by line, per snippet, from one strict mypy run over both."""
    tmp = tmp_path_factory.mktemp("typing")
    for name, code in (("good", GOOD), ("bad", BAD)):
        (tmp / f"{name}.py").write_text(textwrap.dedent(code).lstrip())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # mypy finds the streamer package from the working directory
        stdout, stderr, _status = api.run(
            [
                "--strict",
                "--follow-imports=silent",
                "--cache-dir",
                str(tmp / "cache"),
                str(tmp / "good.py"),
                str(tmp / "bad.py"),
            ]
        )
    assert not stderr, stderr
    errors: dict[str, dict[int, str]] = {"good": {}, "bad": {}}
    for match in re.finditer(r"^.*[/\\](good|bad)\.py:(\d+): error: (.*)$", stdout, re.M):
        errors[match[1]].setdefault(int(match[2]), match[3])
    assert errors["good"] or errors["bad"] or "Success" in stdout, stdout
    return errors


def test_correctly_typed_pipelines_pass(mypy_errors: dict[str, dict[int, str]]) -> None:
    assert mypy_errors["good"] == {}


def test_wrongly_typed_lambdas_are_caught(mypy_errors: dict[str, dict[int, str]]) -> None:
    lines = textwrap.dedent(BAD).lstrip().splitlines()
    marked = {n for n, line in enumerate(lines, start=1) if line.endswith("# error")}
    assert len(marked) == 8
    assert set(mypy_errors["bad"]) == marked, mypy_errors["bad"]
