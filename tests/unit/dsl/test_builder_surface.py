"""``StreamsBuilder`` shows users their entry points only; the graph plumbing is internal."""

from __future__ import annotations

from streamer import GroupedStream, Stream, StreamsBuilder, Table, TumblingWindows, WindowedStream

PLUMBING = {"claim", "add_node", "add_processor", "generated_name", "merge_nodes", "sink"}


def public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def test_the_builder_exposes_entry_points_only() -> None:
    expected = {"stream", "table", "global_table", "add_store", "build"}
    assert public(StreamsBuilder) == expected
    assert public(StreamsBuilder()) == expected


def test_streams_and_tables_expose_no_plumbing() -> None:
    b = StreamsBuilder()
    stream = b.stream("in")
    grouped = stream.group_by_key()
    for obj in (stream, b.table("t"), grouped, grouped.windowed_by(TumblingWindows(10))):
        assert "builder" not in public(obj)
        assert not PLUMBING & public(obj)
    for cls in (Stream, Table, GroupedStream, WindowedStream):
        assert not PLUMBING & public(cls)
