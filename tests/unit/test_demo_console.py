"""The demo's console helpers: a free port range, and staying up until told to stop."""

from __future__ import annotations

import socket
import threading

from streamer.demo.console import console_port, stay_up


def test_the_console_port_moves_when_the_preferred_one_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = int(taken.getsockname()[1])
        chosen = console_port(2, port)
    assert chosen is not None
    assert chosen != port
    for p in (chosen, chosen + 1):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", p))


def test_stay_up_says_where_the_console_is_and_returns_when_stopped() -> None:
    lines: list[str] = []
    stop = threading.Event()
    stop.set()
    stay_up(lines.append, "http://127.0.0.1:8080/", stop)
    assert "http://127.0.0.1:8080/" in lines[0]
    assert "Ctrl-C" in lines[1]
