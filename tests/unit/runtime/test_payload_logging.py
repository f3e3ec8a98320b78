"""Record contents stay out of logs and error headers unless ``log_payloads`` is on.

A poison record carries a card number. By default neither the warnings nor the dead-letter
``streamer.error`` header show it (they name the position, step and kind of error), while
the dead-letter record keeps the raw bytes. With ``log_payloads=True`` a bounded preview
of the raw key and value is added.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from streamer import ErrorPolicy, StreamsBuilder
from streamer.errors import ProcessingError, SerializationError
from streamer.runtime.config import AppConfig
from streamer.runtime.metrics import NoopMetrics
from streamer.runtime.task_context import MESSAGE_CHARS, PREVIEW_BYTES
from streamer.runtime.worker_loop import WorkerLoop
from streamer.serde import AvroSerde, LongSerde, StringSerde
from streamer.testing import TopologyTestDriver
from streamer.topology.graph import Topology
from tests.unit.runtime.scripted import ScriptedClients, ScriptedKafka

CARD = "4111111111111111"
POISON = b'{"card": "' + CARD.encode() + b'", "amount": 12.5, "note": "' + b"x" * 200 + b'" oops'
SECRET_KEY = b"customer-" + CARD.encode()
APP = "app"
DLQ = f"{APP}-dlq"


def _topology() -> Topology:
    builder = StreamsBuilder()
    builder.stream("tx").map_values(lambda v: 1 / v["amount"], name="inverse").to("out")
    return builder.build()


def _dlq_error(driver: TopologyTestDriver) -> bytes:
    (record,) = driver.read_output(DLQ)
    return _dlq_error_of(record)


def _dlq_error_of(record: Any) -> bytes:
    return dict(record.headers)["streamer.error"] or b""


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("policy", [ErrorPolicy.SKIP, ErrorPolicy.DEAD_LETTER])
def test_an_undecodable_record_is_logged_without_its_contents(
    policy: ErrorPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with TopologyTestDriver(_topology(), app_id=APP, error_policy=policy) as driver:
        driver.pipe_raw("tx", SECRET_KEY, POISON, timestamp=0)
        logged = _logged(caplog)
        assert "tx[0]@0" in logged
        assert "(step deserialize)" in logged
        assert "invalid JSON" in logged
        assert f"{len(POISON)} bytes" in logged
        assert CARD not in logged
        if policy is ErrorPolicy.DEAD_LETTER:
            (record,) = driver.read_output(DLQ)
            assert (record.key, record.value) == (SECRET_KEY, POISON), "the DLQ keeps the bytes"
            error = _dlq_error_of(record)
            assert error.startswith(b"cannot decode record at tx[0]@0: invalid JSON")
            assert CARD.encode() not in error


@pytest.mark.parametrize("policy", [ErrorPolicy.SKIP, ErrorPolicy.DEAD_LETTER])
def test_a_failing_step_is_logged_by_position_step_and_kind(
    policy: ErrorPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with TopologyTestDriver(_topology(), app_id=APP, error_policy=policy) as driver:
        driver.pipe("tx", SECRET_KEY.decode(), {"card": CARD, "amount": 0}, timestamp=0)
        logged = _logged(caplog)
        assert "tx[0]@0 (step inverse)" in logged
        assert "step 'inverse' raised ZeroDivisionError" in logged
        assert CARD not in logged
        if policy is ErrorPolicy.DEAD_LETTER:
            error = _dlq_error(driver)
            assert error == b"step 'inverse' raised ZeroDivisionError: division by zero"


def test_with_log_payloads_a_bounded_preview_is_added(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    policy = ErrorPolicy.DEAD_LETTER
    with TopologyTestDriver(
        _topology(), app_id=APP, error_policy=policy, log_payloads=True
    ) as driver:
        driver.pipe_raw("tx", SECRET_KEY, POISON, timestamp=0)
        logged = _logged(caplog)
        error = _dlq_error(driver).decode()
    for text in (logged, error):
        assert CARD in text
        assert f"key {SECRET_KEY!r} ({len(SECRET_KEY)} bytes)" in text
        assert f"value {POISON[:PREVIEW_BYTES]!r}... ({len(POISON)} bytes)" in text
        assert "oops" not in text, "the preview is bounded"


def test_with_log_payloads_a_fail_policy_error_carries_the_preview() -> None:
    with (
        TopologyTestDriver(_topology(), app_id=APP, log_payloads=True) as driver,
        pytest.raises(SerializationError) as failed,
    ):
        driver.pipe_raw("tx", None, POISON, timestamp=0)
    assert "key null" in str(failed.value)
    assert CARD in str(failed.value)
    with (
        TopologyTestDriver(_topology(), app_id=APP) as driver,
        pytest.raises(SerializationError) as failed,
    ):
        driver.pipe_raw("tx", None, POISON, timestamp=0)
    assert CARD not in str(failed.value)


def test_an_undecodable_key_is_named_as_such() -> None:
    builder = StreamsBuilder()
    builder.stream("tx", key_serde=LongSerde()).to("out")
    with TopologyTestDriver(builder.build()) as driver, pytest.raises(SerializationError) as failed:
        driver.pipe_raw("tx", CARD.encode(), b"{}", timestamp=0)
    message = str(failed.value)
    assert message == "cannot decode record at tx[0]@0: a long needs 8 bytes, got 16 (in its key)"


def test_text_that_is_not_utf8_is_described_without_its_bytes() -> None:
    with pytest.raises(SerializationError) as failed:
        StringSerde().decode(CARD.encode() + b"\xff")
    assert str(failed.value) == "not valid UTF-8 (invalid start byte at byte 16 of 17)"


def test_a_value_that_does_not_fit_an_avro_schema_is_described_by_types_only() -> None:
    schema = {
        "type": "record",
        "name": "Payment",
        "fields": [{"name": "card", "type": "string"}, {"name": "amount", "type": "double"}],
    }
    with pytest.raises(SerializationError) as failed:
        AvroSerde(schema).encode({"card": int(CARD), "amount": "twelve"})
    message = str(failed.value)
    assert message == "cannot encode dict as Avro Payment: Payment.card is int, expected string"
    assert CARD not in message
    assert "twelve" not in message


def test_a_sink_that_cannot_encode_does_not_quote_the_value() -> None:
    schema = {"type": "record", "name": "Out", "fields": [{"name": "card", "type": "string"}]}
    builder = StreamsBuilder()
    builder.stream("tx").map_values(lambda v: {"card": int(v["card"])}).to(
        "out", value_serde=AvroSerde(schema)
    )
    with TopologyTestDriver(builder.build()) as driver, pytest.raises(ProcessingError) as failed:
        driver.pipe("tx", "k", {"card": CARD}, timestamp=0)
    assert "Out.card is int, expected string" in str(failed.value)
    assert CARD not in str(failed.value)


def test_a_long_user_exception_message_is_cut() -> None:
    def explode(value: object) -> object:
        raise ValueError("y" * 1000)

    builder = StreamsBuilder()
    builder.stream("tx").map_values(explode, name="explode").to("out")
    with TopologyTestDriver(builder.build()) as driver, pytest.raises(ProcessingError) as failed:
        driver.pipe("tx", "k", {}, timestamp=0)
    assert "y" * MESSAGE_CHARS + "..." in str(failed.value)
    assert "y" * (MESSAGE_CHARS + 1) not in str(failed.value)


@pytest.mark.parametrize("log_payloads", [False, True])
def test_the_worker_passes_log_payloads_to_its_tasks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, log_payloads: bool
) -> None:
    caplog.set_level(logging.WARNING)
    kafka = ScriptedKafka()
    kafka.create("tx", 1)
    kafka.create("out", 1)
    kafka.append("tx", 0, SECRET_KEY, POISON)
    config = AppConfig(
        APP,
        "127.0.0.1:9",
        state_dir=tmp_path,
        error_policy=ErrorPolicy.SKIP,
        log_payloads=log_payloads,
    )
    loop = WorkerLoop(
        _topology(),
        config,
        clients=ScriptedClients(kafka),
        metrics=NoopMetrics(),
        tracing=None,
        stop=threading.Event(),
        publish=lambda snapshot: None,
    )
    loop.start()
    try:
        kafka.assign(("tx", 0))
        for _ in range(3):
            loop.run_once()
    finally:
        loop.close(clean=True)
    logged = _logged(caplog)
    assert "skipped the record at tx[0]@0 (step deserialize)" in logged
    assert (CARD in logged) is log_payloads


@pytest.mark.parametrize("policy", [ErrorPolicy.SKIP, ErrorPolicy.DEAD_LETTER])
def test_a_user_exception_quoting_the_record_stays_out_of_warnings(
    policy: ErrorPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    """int() quotes its bad input; the per-record warning names only the kind of error."""
    caplog.set_level(logging.WARNING)
    builder = StreamsBuilder()
    builder.stream("tx").map_values(lambda v: int(v["card"] + "x"), name="parse").to("out")
    with TopologyTestDriver(builder.build(), app_id=APP, error_policy=policy) as driver:
        driver.pipe("tx", "k", {"card": CARD})
        assert CARD not in _logged(caplog)
        assert "raised ValueError" in _logged(caplog)
        if policy is ErrorPolicy.DEAD_LETTER:  # the DLQ holds the record anyway
            assert CARD.encode() in _dlq_error(driver)
    caplog.clear()
    with TopologyTestDriver(
        builder.build(), app_id=APP, error_policy=policy, log_payloads=True
    ) as driver:
        driver.pipe("tx", "k", {"card": CARD})
        assert CARD in _logged(caplog)
