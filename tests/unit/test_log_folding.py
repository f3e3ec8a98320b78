"""librdkafka's repeated log lines are folded: one line per client and broker per state
change, the same line again at most once per interval, with the count of what was folded."""

from __future__ import annotations

import logging

import pytest

from streamer.kafka.log_folding import LOGGER_NAME, FoldingFilter, fold_key, librdkafka_logger

CONNECT_REFUSED = (
    "[thrd:127.0.0.1:9092/bootstrap]: 127.0.0.1:9092/bootstrap: Connect to "
    "ipv4#127.0.0.1:9092 failed: Connection refused (after {ms}ms in state CONNECT)"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    body: str, *, client: str = "rdkafka#consumer-1", fac: str = "FAIL"
) -> logging.LogRecord:
    """A record as confluent-kafka hands librdkafka's log lines to a Python logger."""
    return logging.LogRecord(
        LOGGER_NAME, logging.ERROR, __file__, 1, "%s [%s] %s", (fac, client, body), None
    )


def shown(folding: FoldingFilter, *records: logging.LogRecord) -> list[str]:
    return [r.getMessage() for r in records if folding.filter(r)]


def test_a_connect_failure_repeated_every_backoff_shows_once() -> None:
    clock = Clock()
    folding = FoldingFilter(interval=60, clock=clock)
    lines = []
    for i in range(1120):  # 70 s of reconnects, one every 62.5 ms
        lines += shown(folding, record(CONNECT_REFUSED.format(ms=i % 3)))
        clock.now += 0.0625
    assert len(lines) == 2  # the first, and once more after 60 s with the count
    assert "Connection refused" in lines[0]
    assert "folded" not in lines[0]
    assert lines[1].endswith("[959 similar lines folded in 60 s]")


def test_a_state_change_is_shown_with_the_count_of_the_repeats_before_it() -> None:
    clock = Clock()
    folding = FoldingFilter(interval=60, clock=clock)
    refused = [record(CONNECT_REFUSED.format(ms=0)) for _ in range(5)]
    up = record("[thrd:main]: 127.0.0.1:9092/bootstrap: Broker is up (after 10ms in state UP)")
    assert len(shown(folding, *refused)) == 1
    clock.now += 3
    (line,) = shown(folding, up)
    assert "Broker is up" in line
    assert line.endswith("[4 similar lines folded in 3 s]")


def test_each_broker_and_each_client_is_folded_on_its_own() -> None:
    folding = FoldingFilter(clock=Clock())
    other_broker = CONNECT_REFUSED.replace("9092", "9093")
    lines = shown(
        folding,
        record(CONNECT_REFUSED.format(ms=0)),
        record(other_broker.format(ms=0)),
        record(CONNECT_REFUSED.format(ms=0), client="rdkafka#producer-2"),
        record(CONNECT_REFUSED.format(ms=1)),
        record(other_broker.format(ms=2)),
    )
    assert len(lines) == 3


def test_durations_do_not_make_a_line_new_but_other_words_do() -> None:
    key, text = fold_key(record(CONNECT_REFUSED.format(ms=17)))
    assert key == ("rdkafka#consumer-1", "", "127.0.0.1:9092/bootstrap")
    assert text == "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
    folding = FoldingFilter(clock=Clock())
    lines = shown(
        folding,
        record("[thrd:main]: 127.0.0.1:9092/1: Disconnected (after 24999ms in state UP)"),
        record("[thrd:main]: 127.0.0.1:9092/1: Disconnected (after 3ms in state UP)"),
        record("[thrd:main]: 127.0.0.1:9092/1: Disconnected: SSL connection closed by peer"),
    )
    assert len(lines) == 2


def test_lines_about_no_broker_are_folded_per_client_and_facility() -> None:
    folding = FoldingFilter(clock=Clock())
    retrying = "[thrd:main]: Failed to acquire transactional PID: Coordinator load in progress"
    lines = shown(
        folding,
        record(retrying, fac="GETPID"),
        record(retrying, fac="GETPID"),
        record(retrying, fac="TXNERR"),
    )
    assert len(lines) == 2


def test_other_records_are_folded_by_logger_and_message() -> None:
    folding = FoldingFilter(clock=Clock())
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    again = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    assert shown(folding, plain, again) == ["hello you"]


def test_the_librdkafka_logger_has_one_folding_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = librdkafka_logger()
    assert librdkafka_logger() is logger
    assert sum(isinstance(f, FoldingFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        for _ in range(50):
            logger.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#t-1", CONNECT_REFUSED)
    assert len(caplog.records) == 1
