"""Routing across hosts: a group whose two workers sit in two network namespaces, with the
broker in a third, all made by the test. A key owned by the other "host" is asked at this
one's query server and forwarded there, so nothing assumes one host.

The namespaces are joined by a bridge in the broker's namespace and addressed in
127.77.0.0/16 (with ``route_localnet`` on, and loopback narrowed to 127.0.0.1 in each
namespace), so no address outside 127.0.0.0/8 is ever used. Needs root and ``ip``; the test
is skipped, saying why, where namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.partitioner import partition_for_key
from tests.integration import apps
from tests.integration.netns_helpers import KEYS, count_of

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.query_apps:counts"
BROKER, HOST_A, HOST_B = "127.77.0.1", "127.77.0.2", "127.77.0.3"
PORT = 8080
PARTITIONS = 4


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def helper(ns: str, *args: str) -> list[str]:
    return in_ns(ns, sys.executable, "-m", "tests.integration.netns_helpers", *args)


def make_namespaces(prefix: str) -> dict[str, str]:
    """Three namespaces (broker, host a, host b) on one bridge in the broker's."""
    names = {role: f"{prefix}{role}" for role in ("k", "a", "b")}
    for ns in names.values():
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", names["k"], "link", "add", "br0", "type", "bridge")
    ip("-n", names["k"], "link", "set", "br0", "up")
    ip("-n", names["k"], "addr", "add", f"{BROKER}/16", "dev", "br0")
    for role, address in (("a", HOST_A), ("b", HOST_B)):
        inner, outer = f"{prefix}v{role}", f"{prefix}p{role}"
        ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        ip("link", "set", inner, "netns", names[role])
        ip("link", "set", outer, "netns", names["k"])
        ip("-n", names["k"], "link", "set", outer, "master", "br0")
        ip("-n", names["k"], "link", "set", outer, "up")
        ip("-n", names[role], "addr", "add", f"{address}/16", "dev", inner)
        ip("-n", names[role], "link", "set", inner, "up")
    for ns in names.values():
        links = subprocess.run(
            ["ip", "-n", ns, "-o", "link", "show"], check=True, capture_output=True, text=True
        ).stdout
        for link in ["all", *(line.split(": ")[1].split("@")[0] for line in links.splitlines())]:
            subprocess.run(
                in_ns(ns, "sysctl", "-qw", f"net.ipv4.conf.{link}.route_localnet=1"),
                check=True,
                capture_output=True,
            )
        # 127.0.0.0/8 is all local by default: keep only 127.0.0.1, so the others route.
        ip("-n", ns, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("-n", ns, "route", "add", "local", "127.0.0.1", "dev", "lo", "table", "local")
    return names


def remove_namespaces(names: dict[str, str]) -> None:
    for ns in names.values():
        pids = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.fixture
def namespaces() -> Iterator[dict[str, str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("making network namespaces needs root and the 'ip' command (iproute2)")
    prefix = f"sq{uuid.uuid4().hex[:5]}"
    try:
        names = make_namespaces(prefix)
    except (subprocess.CalledProcessError, OSError) as exc:
        remove_namespaces({r: f"{prefix}{r}" for r in ("k", "a", "b")})
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"network namespaces cannot be made here: {exc} {detail.decode().strip()}")
    try:
        yield names
    finally:
        remove_namespaces(names)


def test_a_key_owned_by_the_other_host_is_forwarded_there(
    namespaces: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMER_HTTP_TOKEN": "netns-token"}
    broker = subprocess.Popen(
        helper(namespaces["k"], "broker", BROKER),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "broker.log").open("wb"),
        env=env,
        cwd=ROOT,
        text=True,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        assert broker.stdout is not None
        line = broker.stdout.readline()
        assert line.startswith("bootstrap="), (tmp_path / "broker.log").read_text()[-2000:]
        bootstrap = line.strip().split("=", 1)[1]
        source, sink = f"hosts-in-{uuid.uuid4().hex[:6]}", f"hosts-out-{uuid.uuid4().hex[:6]}"
        env.update({apps.INPUT: source, apps.OUTPUT: sink})
        subprocess.run(
            helper(namespaces["a"], "produce", bootstrap, source, sink, str(PARTITIONS)),
            env=env, cwd=ROOT, check=True, timeout=60,
        )  # fmt: skip
        app_id = f"hosts-{uuid.uuid4().hex[:6]}"
        for role, address in (("a", HOST_A), ("b", HOST_B)):
            argv = [
                sys.executable, "-m", "streamer.cli.main", "run", APP, "--app-id", app_id,
                "--bootstrap-servers", bootstrap, "--state-dir", str(tmp_path / role),
                "--instance-prefix", f"host-{role}-", "--http-port", str(PORT),
                "--http-address", address, "--advertised-url", f"http://{address}:{PORT}",
            ]  # fmt: skip
            log = (tmp_path / f"host-{role}.log").open("wb")
            workers.append(
                subprocess.Popen(
                    in_ns(namespaces[role], *argv),
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        url_a, url_b = f"http://{HOST_A}:{PORT}", f"http://{HOST_B}:{PORT}"

        def logs() -> str:
            return "\n".join((tmp_path / f"host-{r}.log").read_text()[-2000:] for r in ("a", "b"))

        settle = subprocess.run(
            helper(namespaces["a"], "settled", url_a, "netns-token"),
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert settle.returncode == 0, f"{settle.stderr}\n{logs()}"
        done = subprocess.run(
            helper(namespaces["a"], "lookup", url_a, "netns-token", *KEYS),
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stderr}\n{logs()}"
        answers = [json.loads(line) for line in done.stdout.splitlines()]
        assert [a["value"] for a in answers] == [count_of(k) for k in KEYS]
        assert [a["partition"] for a in answers] == [
            partition_for_key(k.encode(), PARTITIONS) for k in KEYS
        ]
        # Host a answered its own keys and forwarded the others to host b, across namespaces.
        assert {a["served_by"] for a in answers} == {url_a, url_b}
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(30)
        if broker.stdin is not None:
            broker.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            broker.wait(30)
