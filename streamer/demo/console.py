"""The demo's web console: the workers' query servers, and staying up until Ctrl-C.

Worker ``i`` serves the console and interactive queries on ``port + i`` (loopback only), so
a person can watch alerts arrive and look up a card's velocity window
(``fraud-velocity-window``) while the demo runs, and, with ``--console``, after it.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable

from streamer.errors import ConfigError

VELOCITY_STORE = "fraud-velocity-window"


def console_port(processes: int, preferred: int) -> int | None:
    """The first of ``processes`` free loopback ports, ``preferred`` if it and the next ones
    are free; None when the query extra (starlette, uvicorn, httpx) is not installed."""
    from streamer.query.server import require_query_extra

    try:
        require_query_extra()
    except ConfigError:
        return None
    if preferred + processes <= 65536 and all(_free(preferred + i) for i in range(processes)):
        return preferred
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + processes <= 65536 and all(_free(first + i) for i in range(processes)):
            return first
    return None


def _free(port: int) -> bool:
    with socket.socket() as probe:
        # As the query server binds: a port whose last connections are in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stay_up(say: Callable[[str], None], url: str, stop: threading.Event | None = None) -> None:
    """Keep everything running until Ctrl-C, SIGTERM (on the main thread) or ``stop``,
    saying where the console is."""
    say(f"==> the console stays up at {url} ; look up a card in '{VELOCITY_STORE}'.")
    say("    Ctrl-C stops the workers, the readers and the broker.")
    waiter = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda _s, _f: waiter.set())
    try:
        while not waiter.wait(1.0):
            pass
    except KeyboardInterrupt:
        say("")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
