"""librdkafka's log lines, through one Python logger, with repeats folded.

A client that cannot reach a broker logs the same connect failure every reconnect backoff:
about 1,350 lines in 70 s for one worker. Every client of :mod:`streamer.kafka` logs through
:func:`librdkafka_logger` (``streamer.librdkafka``), whose :class:`FoldingFilter` lets
through one line per client and broker per state change, and the same line again at most
once per ``interval`` while it repeats, saying how many repeats it folded.

confluent-kafka hands a log line over as ``"%s [%s] %s" % (facility, client name, text)``,
where the text usually starts with ``[thrd:<thread>]: <broker>: ``; the broker part is
``host:port/id`` or ``proto://host:port/id`` (``bootstrap`` before the id is known).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOGGER_NAME = "streamer.librdkafka"
FOLD_INTERVAL_S = 60.0
"""A line that keeps repeating is shown again, with its count, at most this often."""

_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")
_BROKER = re.compile(r"^(?P<broker>(?:[a-z_]+://)?[^\s/:]+:\d+/[^\s:]+):\s*(?P<text>.*)$", re.S)
# Run-specific parts of a line: how long a state lasted, and timings in general.
_AFTER = re.compile(
    r"\s*\(after -?\d+ms in state [A-Z_]+(?:, \d+ identical error\(s\) suppressed)?\)"
)
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|s|us)\b")


@dataclass
class _Run:
    """The last line shown for one key, and what was folded since."""

    text: str
    shown_at: float
    folded: int = 0


def fold_key(record: logging.LogRecord) -> tuple[tuple[str, str, str], str]:
    """``((client, facility, broker), text)`` of a librdkafka record: what identifies its
    source, and its text without run-specific parts (durations). Other records are keyed
    by their logger name and their whole message."""
    args = record.args
    if isinstance(args, tuple) and len(args) == 3 and record.msg == "%s [%s] %s":
        facility, client, body = (str(a) for a in args)
        body = _THREAD.sub("", body, count=1)
        match = _BROKER.match(body)
        broker, text = (match["broker"], match["text"]) if match else ("", body)
        text = _DURATION.sub("<t>", _AFTER.sub("", text))
        return (client, facility if not broker else "", broker), text
    return (record.name, "", ""), record.getMessage()


class FoldingFilter(logging.Filter):
    """Lets a librdkafka line through only when it says something new.

    Invariants, per key (client, broker; or client and facility for lines about no broker):

    * a line whose text (without durations) differs from the last line shown is shown: a
      state change is never hidden;
    * a line equal to the last one shown is dropped and counted, unless ``interval`` seconds
      have passed since that one was shown; then it is shown, with the count;
    * a shown line that follows dropped ones ends with ``[N similar lines folded in S s]``,
      so no repeat goes unaccounted.
    """

    def __init__(
        self, interval: float = FOLD_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._runs: dict[tuple[str, str, str], _Run] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key, text = fold_key(record)
        now = self._clock()
        with self._lock:
            run = self._runs.get(key)
            if run is not None and run.text == text and now - run.shown_at < self.interval:
                run.folded += 1
                return False
            folded, since = (run.folded, now - run.shown_at) if run is not None else (0, 0.0)
            self._runs[key] = _Run(text, now)
        if folded:
            record.msg = f"{record.getMessage()} [{folded} similar lines folded in {since:.0f} s]"
            record.args = None
        return True


_INSTALL_LOCK = threading.Lock()


def librdkafka_logger() -> logging.Logger:
    """The logger every streamer Kafka client logs to, with a :class:`FoldingFilter`
    (installed once per process)."""
    logger = logging.getLogger(LOGGER_NAME)
    with _INSTALL_LOCK:
        if not any(isinstance(f, FoldingFilter) for f in logger.filters):
            logger.addFilter(FoldingFilter())
    return logger
