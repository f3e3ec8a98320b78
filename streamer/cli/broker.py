"""``streamer broker``: run a local Kafka (KRaft) broker or cluster from Maven-resolved jars.

``up``    starts the broker(s) in the background and records them in
          ``<data-dir>/streamer-broker.json``; the last line printed is
          ``bootstrap.servers=HOST:PORT,...``
``down``  stops the brokers recorded there (SIGTERM, then SIGKILL)
``status`` tells whether they run
``jars``  only resolves the broker jars (cached after the first time)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from streamer.errors import KafkaHarnessError
from streamer.testing.kafka.cluster import LocalKafkaCluster
from streamer.testing.kafka.jars import resolve_broker_jars
from streamer.testing.kafka.node import pid_alive

STATE_FILE = "streamer-broker.json"
DEFAULT_DATA_DIR = Path("var") / "kafka"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a local Kafka broker (KRaft) in the background",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="broker_action", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="start broker(s) in the background")
    up.add_argument("--brokers", type=int, default=1, help="number of nodes (default 1)")
    _data_dir_option(up)
    up.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness (120)"
    )
    up.set_defaults(handler=cmd_up)

    down = actions.add_parser("down", help="stop the broker(s) started by 'up'")
    _data_dir_option(down)
    down.add_argument(
        "--timeout", type=float, default=15.0, help="seconds before SIGKILL (default 15)"
    )
    down.set_defaults(handler=cmd_down)

    status = actions.add_parser("status", help="tell whether the broker(s) run")
    _data_dir_option(status)
    status.set_defaults(handler=cmd_status)

    jars = actions.add_parser("jars", help="resolve the Kafka broker jars with Maven")
    jars.set_defaults(handler=cmd_jars)


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where broker data, logs and the state file live (default {DEFAULT_DATA_DIR})",
    )


def _say(text: str) -> None:
    print(text, flush=True)


# -- state file ---------------------------------------------------------------------------
def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def read_state(data_dir: Path) -> dict[str, Any] | None:
    path = state_path(data_dir)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}; delete it if no broker runs"
        raise KafkaHarnessError(msg) from exc
    return state


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    path = state_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


def is_our_broker(pid: int, node: dict[str, Any]) -> bool:
    """True when ``pid`` runs and is the broker of ``node`` (not a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    args = [a.decode(errors="replace") for a in cmdline]
    properties = str(Path(node["node_dir"]) / "server.properties")
    return "kafka.Kafka" in args and properties in args


def running_pids(state: dict[str, Any]) -> list[int]:
    return [
        int(node["pid"])
        for node in state.get("nodes", [])
        if node.get("pid") and is_our_broker(int(node["pid"]), node)
    ]


def stop_pids(pids: list[int], timeout: float) -> None:
    """SIGTERM ``pids``, wait up to ``timeout`` seconds, SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)


# -- commands -----------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    if args.brokers < 1:
        msg = f"--brokers must be at least 1, not {args.brokers}"
        raise KafkaHarnessError(msg)
    data_dir: Path = args.data_dir.resolve()
    state = read_state(data_dir)
    if state is not None:
        pids = running_pids(state)
        if pids and len(pids) == len(state.get("nodes", [])):
            _say(f"Kafka already runs from {data_dir} (pids {', '.join(map(str, pids))})")
            _say(f"bootstrap.servers={state['bootstrap_servers']}")
            return 0
        if pids:
            _say(f"stopping the remains of a previous cluster (pids {pids})")
            stop_pids(pids, 15.0)
        state_path(data_dir).unlink(missing_ok=True)
    noun = "broker" if args.brokers == 1 else "brokers"
    _say(f"starting {args.brokers} Kafka {noun} (KRaft) in {data_dir}")
    cluster = LocalKafkaCluster(
        args.brokers, data_dir=data_dir, start_timeout=args.timeout, detached=True
    )
    try:
        cluster.start()
    except BaseException:
        cluster.stop(timeout=5)
        raise
    write_state(data_dir, cluster.state())
    for node in cluster.nodes:
        _say(f"  node {node.node_id}: pid {node.pid}, {node.bootstrap}, log {node.log_path}")
    down = "streamer broker down"
    if args.data_dir != DEFAULT_DATA_DIR:
        down += f" --data-dir {data_dir}"
    _say(f"ready in {cluster.started_in or 0:.1f} s; stop with: {down}")
    _say(f"bootstrap.servers={cluster.bootstrap_servers}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    state = read_state(data_dir)
    if state is None:
        _say(f"no Kafka started from {data_dir} (no {STATE_FILE}); nothing to stop")
        return 0
    pids = running_pids(state)
    if pids:
        _say(f"stopping Kafka (pids {', '.join(map(str, pids))})")
        stop_pids(pids, args.timeout)
    left = [pid for pid in pids if pid_alive(pid)]
    if left:
        msg = f"Kafka processes {left} are still running"
        raise KafkaHarnessError(msg)
    state_path(data_dir).unlink(missing_ok=True)
    _say("Kafka stopped" if pids else "Kafka was not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    state = read_state(data_dir)
    if state is None:
        _say(f"no Kafka started from {data_dir}")
        return 1
    pids = set(running_pids(state))
    nodes = state.get("nodes", [])
    for node in nodes:
        alive = "running" if node.get("pid") in pids else "stopped"
        _say(f"node {node['node_id']}: {alive}, pid {node['pid']}, 127.0.0.1:{node['port']}")
    _say(f"bootstrap.servers={state['bootstrap_servers']}")
    return 0 if len(pids) == len(nodes) else 1


def cmd_jars(args: argparse.Namespace) -> int:
    path = resolve_broker_jars()
    _say(f"Kafka broker jars: {path}")
    return 0
