"""Secret client settings from a config file reach every client of a real worker group and of
the operations commands, and never show in a command line, a log or any command's output.

The test broker is PLAINTEXT, which ignores SASL and TLS settings; librdkafka accepts them
there (it only warns about ``sasl.username`` without a mechanism, which is not used here).
``debug = "conf"`` in ``[kafka]`` makes each client log its configuration when it is
built, with secret values as ``[redacted]``: so the log (at ``-v``) proves which client got
which table, and the secrets are looked for in the same log. The admin clients log theirs
only when polled, so the admin table is proven by unit tests instead
(tests/unit/test_client_factory_settings.py: librdkafka refuses a bad admin key).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from streamer.kafka.clients import produce
from streamer.testing.kafka import KafkaCluster
from tests.integration import apps
from tests.integration.support import start_streamer_run, wait_for_count

MARKERS = {
    "kafka": ("sasl.password", "pw-kafka-5a1e0c"),
    "consumer": ("sasl.oauthbearer.client.secret", "secret-consumer-91b7"),
    "producer": ("ssl.key.password", "pw-producer-2d44"),
    "admin": ("ssl.keystore.password", "pw-admin-7f03"),
}
GLOBAL = "STREAMER_TEST_GLOBAL"

TOPOLOGY = f"""
import os

from streamer import StreamsBuilder

builder = StreamsBuilder()
rates = builder.global_table(os.environ["{GLOBAL}"])
builder.stream(os.environ["{apps.INPUT}"]).left_join(
    rates,
    lambda value, rate: {{**value, "rate": rate}},
    key_selector=lambda _key, _value: "eur",
    name="with-rate",
).to(os.environ["{apps.OUTPUT}"])
topology = builder.build()
"""


def _config_file(path: Path, app_id: str, bootstrap: str, state_dir: Path) -> Path:
    lines = [
        "[app]",
        f'app_id = "{app_id}"',
        f'bootstrap_servers = "{bootstrap}"',
        f'state_dir = "{state_dir}"',
        "[run]",
        "processes = 2",
        "[kafka]",
        'debug = "conf"',
    ]
    for role, (key, marker) in MARKERS.items():
        if role != "kafka":
            lines.append(f"[kafka.{role}]")
        lines.append(f'"{key}" = "{marker}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _command_lines_holding(markers: list[str]) -> list[str]:
    """The command line of every process on this host that contains a marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited, or not ours to read
        if any(marker.encode() in cmdline for marker in markers):
            found.append(f"{entry.name}: {cmdline!r}")
    return found


def _redacted_count(text: str, key: str) -> int:
    return len(re.findall(rf"\s{re.escape(key)} = \[redacted\]", text))


def test_secrets_reach_every_client_and_appear_in_no_command_line_or_log(
    kafka: KafkaCluster, new_topic, tmp_path: Path
) -> None:
    source, sink, rates = new_topic(partitions=2), new_topic(partitions=2), new_topic()
    bootstrap = kafka.bootstrap_servers
    records = [(f"k{n}".encode(), json.dumps({"n": n}).encode()) for n in range(50)]
    produce(bootstrap, source, records)
    app_id = f"it-secrets-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    config = _config_file(tmp_path / "streamer.toml", app_id, bootstrap, tmp_path / "state")
    topology = tmp_path / "with_rates.py"
    topology.write_text(TOPOLOGY)
    markers = [marker for _key, marker in MARKERS.values()]
    log = tmp_path / "run.log"
    env = {apps.INPUT: source, apps.OUTPUT: sink, GLOBAL: rates}
    group = start_streamer_run([str(topology), "--config", str(config), "-v"], env, log)
    try:
        wait_for_count(bootstrap, sink, len(records), timeout=120)
        assert _command_lines_holding(markers) == []
        lag = subprocess.run(
            [sys.executable, "-m", "streamer.cli.main", "-v", "lag", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        group.send_signal(signal.SIGTERM)
        assert group.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if group.poll() is None:
            group.kill()
    text = log.read_text()
    assert "[worker 0]" in text
    assert "[worker 1]" in text
    for marker in markers:
        assert marker not in text
        assert marker not in lag.stdout + lag.stderr
    # Per worker: the producer, the restore, global-table and group consumers all get
    # [kafka]; the three consumers [kafka.consumer], the producer [kafka.producer].
    assert _redacted_count(text, "sasl.password") >= 2 * 4
    assert _redacted_count(text, "sasl.oauthbearer.client.secret") >= 2 * 3
    assert _redacted_count(text, "ssl.key.password") >= 2
    producers = len(re.findall(rf"client\.id = {app_id}-\d-producer", text))
    assert _redacted_count(text, "ssl.key.password") == producers
    # streamer lag reads the same file; its admin clients get [kafka] and [kafka.admin]
    # (tests/unit/test_cli_config.py shows librdkafka refusing a bad [kafka.admin] key).
    assert lag.returncode == 0, lag.stderr[-3000:]
    assert source in lag.stdout
