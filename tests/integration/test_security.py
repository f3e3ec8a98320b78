"""streamer on a secured broker: SASL_SSL (SCRAM-SHA-512), TLS and ACLs enforced.

Every app here runs as its own principal holding only the ACLs of docs/security.md
(``app_acls``, plus ``ops_acls`` for the operations commands; a unit test keeps the page and
those lists equal). The worker group runs exactly-once through ``streamer run``; ``lag``,
``replay --dry-run`` and ``reset`` work as the same principal; a wrong password and a missing
ACL each end the run with one line naming the cause, quickly; and the password shows in no
process's command line and no log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from streamer.kafka.acls import Acl, app_acls, ops_acls
from streamer.kafka.admin import TopicSpec
from streamer.kafka.clients import produce
from streamer.testing.kafka import Credentials, SecuredKafka
from streamer.testing.kafka.tls import make_tls_files
from tests.integration import apps
from tests.integration.support import start_streamer_run

TOPOLOGY = f"{Path(apps.__file__)}:regrouped_sum"  # group_by (repartition) + aggregate
RECORDS = 300
GROUPS = 7
FAIL_WITHIN_S = 30.0


def _names() -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"sec-{suffix}", f"sec-in-{suffix}", f"sec-out-{suffix}"


def _topics(kafka: SecuredKafka, source: str, sink: str) -> None:
    kafka.kafka_admin.create_topics(
        [
            TopicSpec(source, 4, config={"retention.ms": "-1"}),
            TopicSpec(sink, 2, config={"retention.ms": "-1"}),
        ]
    )


def _config(path: Path, kafka: SecuredKafka, app_id: str, user: Credentials, **app: Any) -> Path:
    """A streamer.toml for ``app_id`` connecting as ``user``, readable by its owner only."""
    settings = {"app_id": app_id, "bootstrap_servers": kafka.bootstrap_servers, **app}
    lines = ["[app]"] + [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines.append("[kafka]")
    lines += [f'"{k}" = {json.dumps(v)}' for k, v in kafka.client_config(user).items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _produce(kafka: SecuredKafka, topic: str) -> None:
    records = [
        (f"k{n}".encode(), json.dumps({"n": n, "group": f"g{n % GROUPS}"}).encode())
        for n in range(RECORDS)
    ]
    produce(kafka.bootstrap_servers, topic, records, config=kafka.client_config())


def _read(kafka: SecuredKafka, topic: str, count: int, timeout: float) -> list[tuple[str, Any]]:
    """``count`` committed records of ``topic`` read as the admin, as (key, value); fails
    when fewer arrive within ``timeout`` s, or more show up half a second after."""
    consumer = Consumer(
        {
            **kafka.config(),
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    partitions = kafka.kafka_admin.partitions(topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=0.5):
                if m.error() is not None:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                out.append((m.key().decode(), json.loads(m.value())))
        out += [
            (m.key().decode(), json.loads(m.value()))
            for m in consumer.consume(1000, timeout=0.5)
            if m.error() is None
        ]
    finally:
        consumer.close()
    assert len(out) == count, f"{topic}: {len(out)} records, expected {count}"
    return out


def _command_lines_holding(secret: str) -> list[str]:
    """The command line of every process on this host that contains ``secret``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if secret.encode() in cmdline:
            found.append(f"{entry.name}: {cmdline!r}")
    return found


def _streamer(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _repartition_purged(kafka: SecuredKafka, app_id: str, timeout: float) -> str:
    """Wait until the group deleted committed records of its repartition topic (which needs
    the DELETE ACL); return the topic."""
    (topic,) = [t for t in kafka.kafka_admin.list_topics() if t.startswith(f"{app_id}-by-group")]
    deadline = time.monotonic() + timeout
    while sum(kafka.kafka_admin.start_offsets(topic).values()) == 0:
        assert time.monotonic() < deadline, f"{topic} was not purged within {timeout} s"
        time.sleep(0.2)
    return topic


def _check_exactly_once(outputs: list[tuple[str, Any]]) -> None:
    """Each group's running count goes 1, 2, ..., N_g, each once; the totals add up."""
    by_group: dict[str, list[int]] = defaultdict(list)
    totals: dict[str, int] = {}
    for key, value in outputs:
        by_group[key].append(value["count"])
        totals[key] = max(totals.get(key, 0), value["total"])
    expected = defaultdict(list)
    for n in range(RECORDS):
        expected[f"g{n % GROUPS}"].append(n)
    for group, ns in expected.items():
        assert sorted(by_group[group]) == list(range(1, len(ns) + 1)), group
        assert totals[group] == sum(ns), group


def test_a_worker_group_runs_exactly_once_with_only_the_documented_acls(
    secure_kafka: SecuredKafka, tmp_path: Path
) -> None:
    app_id, source, sink = _names()
    _topics(secure_kafka, source, sink)
    user = secure_kafka.create_user(
        f"{app_id}-user", acls=app_acls(app_id, inputs=[source], outputs=[sink])
    )
    _produce(secure_kafka, source)
    config = _config(
        tmp_path / "streamer.toml",
        secure_kafka,
        app_id,
        user,
        state_dir=str(tmp_path / "state"),
        repartition_purge_interval_ms=500,
    )
    log = tmp_path / "run.log"
    env = {apps.INPUT: source, apps.OUTPUT: sink}
    group = start_streamer_run([TOPOLOGY, "--config", str(config), "--processes", "2"], env, log)
    try:
        outputs = _read(secure_kafka, sink, RECORDS, timeout=120)
        _repartition_purged(secure_kafka, app_id, timeout=60)
        assert _command_lines_holding(user.password) == []
        group.send_signal(signal.SIGTERM)
        assert group.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if group.poll() is None:
            group.kill()
    _check_exactly_once(outputs)
    text = log.read_text()
    assert "[worker 0]" in text
    assert "[worker 1]" in text
    assert user.password not in text
    assert "not authorized" not in text
    assert "could not delete" not in text  # the repartition purge had its DELETE ACL

    secure_kafka.grant(user, ops_acls(app_id))
    _check_operations(secure_kafka, config, app_id, source, user.password)


def _check_operations(
    kafka: SecuredKafka, config: Path, app_id: str, source: str, password: str
) -> None:
    """``lag``, ``replay --dry-run`` and ``reset`` as the app's principal."""
    lag = _streamer("lag", "--config", str(config), "--json")
    assert lag.returncode == 0, lag.stderr[-3000:]
    report = json.loads(lag.stdout)
    print("lag:", json.dumps(report)[:500])
    assert source in lag.stdout
    replay = _streamer("replay", "--config", str(config), "--from", "earliest", "--dry-run")
    assert replay.returncode == 0, replay.stderr[-3000:]
    print("replay --dry-run:", replay.stdout[:800])
    assert source in replay.stdout
    reset = _streamer("reset", "--config", str(config), "--yes")
    assert reset.returncode == 0, reset.stderr[-3000:]
    print("reset:", reset.stdout[:800])
    for result in (lag, replay, reset):
        assert password not in result.stdout + result.stderr
    left = [t for t in kafka.kafka_admin.list_topics() if t.startswith(f"{app_id}-")]
    assert left == []


def _run_until_it_fails(
    kafka: SecuredKafka, tmp_path: Path, app_id: str, source: str, sink: str, user: Credentials
) -> tuple[int, float, list[str]]:
    """``streamer run`` with its default restart limit: (exit code, seconds it took, output
    lines). A failure no restart can fix stops the group after one attempt."""
    config = _config(
        tmp_path / "streamer.toml", kafka, app_id, user, state_dir=str(tmp_path / "state")
    )
    log = tmp_path / "run.log"
    env = {apps.INPUT: source, apps.OUTPUT: sink}
    started = time.monotonic()
    group = start_streamer_run([TOPOLOGY, "--config", str(config)], env, log)
    try:
        code = group.wait(FAIL_WITHIN_S + 30)
    finally:
        if group.poll() is None:
            group.kill()
    return code, time.monotonic() - started, log.read_text().splitlines()


def test_a_wrong_password_ends_streamer_run_with_one_clear_line(
    secure_kafka: SecuredKafka, tmp_path: Path
) -> None:
    app_id, source, sink = _names()
    _topics(secure_kafka, source, sink)
    user = secure_kafka.create_user(
        f"{app_id}-user", acls=app_acls(app_id, inputs=[source], outputs=[sink])
    )
    wrong = Credentials(user.username, "not-" + user.password)
    code, took, lines = _run_until_it_fails(secure_kafka, tmp_path, app_id, source, sink, wrong)
    named = [line for line in lines if "authentication failed" in line]
    print(f"exit {code} after {took:.1f} s:", *named, sep="\n  ")
    assert code != 0
    assert took < FAIL_WITHIN_S
    assert named, "\n".join(lines[-30:])
    assert f"authentication failed for user '{user.username}' (SASL SCRAM-SHA-512)" in named[0]
    assert len(named) == 1, named  # no restarts, and said once
    assert wrong.password not in "\n".join(lines)
    assert not [line for line in lines if "SASL authentication error" in line]


@pytest.mark.parametrize(
    "missing", ["output WRITE", "output all", "transactional-id WRITE", "group READ"]
)
def test_a_missing_acl_ends_streamer_run_naming_the_resource_and_operation(
    secure_kafka: SecuredKafka, tmp_path: Path, missing: str
) -> None:
    app_id, source, sink = _names()
    _topics(secure_kafka, source, sink)
    # Without WRITE the output topic stays visible (DESCRIBE); with no ACL at all on it, the
    # broker hides it from the topic list, and asking for it by name names the ACL.
    dropped, kept = {
        "output WRITE": (Acl("topic", sink, "WRITE"), [Acl("topic", sink, "DESCRIBE")]),
        "output all": (Acl("topic", sink, "WRITE"), []),
        "transactional-id WRITE": (Acl("transactional-id", f"{app_id}-", "WRITE", True), []),
        "group READ": (Acl("group", app_id, "READ"), []),
    }[missing]
    expected = {
        "output WRITE": f"not authorized to WRITE topic '{sink}'",
        "output all": f"not authorized to DESCRIBE topic '{sink}'",
        "transactional-id WRITE": f"not authorized to WRITE transactional id '{app_id}-0'",
        "group READ": f"not authorized to READ group '{app_id}'",
    }[missing]
    acls = [a for a in app_acls(app_id, inputs=[source], outputs=[sink]) if a != dropped]
    acls += kept
    user = secure_kafka.create_user(f"{app_id}-user", acls=acls)
    _produce(secure_kafka, source)
    code, took, lines = _run_until_it_fails(secure_kafka, tmp_path, app_id, source, sink, user)
    named = [line for line in lines if expected in line]
    print(f"exit {code} after {took:.1f} s:", *named, sep="\n  ")
    assert code != 0
    assert took < FAIL_WITHIN_S
    assert named, "\n".join(lines[-30:])
    assert f"as User:{user.username}" in named[0]
    assert len(named) == 1, named  # no restarts, and said once


@pytest.mark.parametrize("failure", ["password", "certificate"])
def test_the_operations_commands_name_a_failed_authentication_or_handshake(
    secure_kafka: SecuredKafka, tmp_path: Path, failure: str
) -> None:
    app_id, _source, _sink = _names()
    user = secure_kafka.create_user(f"{app_id}-user")
    if failure == "password":
        user = Credentials(user.username, "wrong-password-1")
    config = _config(tmp_path / "streamer.toml", secure_kafka, app_id, user)
    if failure == "certificate":  # trust another CA than the broker's
        other_ca = make_tls_files(tmp_path / "other-ca").ca_path
        text = config.read_text().replace(str(secure_kafka.ca_path), str(other_ca))
        config.write_text(text)
    started = time.monotonic()
    lag = _streamer("lag", "--config", str(config))
    took = time.monotonic() - started
    print(f"lag exit {lag.returncode} after {took:.1f} s: {lag.stderr.strip()}")
    assert lag.returncode != 0
    assert took < FAIL_WITHIN_S
    expected = {
        "password": f"streamer: error: authentication failed for user '{user.username}'",
        "certificate": "streamer: error: TLS handshake with 127.0.0.1:",
    }[failure]
    assert lag.stderr.strip().splitlines()[-1].startswith(expected)
    assert user.password not in lag.stdout + lag.stderr
