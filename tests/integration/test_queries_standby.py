"""Standby copies answer queries the active task cannot, marked stale with their lag."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from streamer.query import QueryClient
from streamer.testing.kafka.pytest_plugin import TopicFactory
from tests.integration import apps
from tests.integration.query_support import (
    APP,
    KEYS,
    PARTITIONS,
    TOKEN,
    free_ports,
    produce_counts,
    stop,
    wait_for_tasks,
)
from tests.integration.support import wait_for_group_caught_up

pytestmark = pytest.mark.kafka


def test_a_standby_copy_answers_marked_stale_while_the_owner_is_dead(
    kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hosts (instance prefixes) with a standby replica each: once host b is SIGKILLed,
    the group still lists it as the owner of its partitions until its session expires;
    host a cannot forward there, and answers from its warm copy, marked stale."""
    bootstrap = kafka.bootstrap_servers
    topics = TopicFactory(bootstrap, "standby-query")
    source, sink = topics(PARTITIONS), topics(PARTITIONS)
    monkeypatch.setenv(apps.INPUT, source)
    monkeypatch.setenv(apps.OUTPUT, sink)
    stamps = produce_counts(bootstrap, source)
    app_id = f"it-standby-query-{uuid.uuid4().hex[:8]}"
    port = free_ports(2)
    hosts: dict[str, subprocess.Popen[bytes]] = {}
    env = {**os.environ, "STREAMER_HTTP_TOKEN": TOKEN}
    for offset, host in enumerate("ab"):
        argv = [
            sys.executable, "-m", "streamer.cli.main", "run", APP, "--app-id", app_id,
            "--bootstrap-servers", bootstrap, "--state-dir", str(tmp_path / host),
            "--instance-prefix", f"host-{host}-", "--standby-replicas", "1",
            "--http-port", str(port + offset),
        ]  # fmt: skip
        log = (tmp_path / f"{host}.log").open("wb")
        hosts[host] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url_a = f"http://127.0.0.1:{port}"
    try:
        with QueryClient(url_a, token=TOKEN) as client:
            log_a = tmp_path / "a.log"
            wait_for_tasks(client, 2, log_a)
            wait_for_group_caught_up(bootstrap, app_id, source, timeout=60)
            deadline = time.monotonic() + 60
            while True:  # host a keeps caught-up copies of host b's tasks
                views = client.overview()["workers"]
                mine = next(v for v in views if v["url"] == url_a)
                theirs = {t["id"] for v in views if v["url"] != url_a for t in v["tasks"]}
                if theirs and mine["standbys"] == dict.fromkeys(theirs, 0):
                    break
                assert time.monotonic() < deadline, f"{views}\n{log_a.read_text()[-3000:]}"
                time.sleep(0.2)
            os.killpg(hosts["b"].pid, signal.SIGKILL)
            hosts["b"].wait(10)
            for key in KEYS:
                answer = client.get("counts", key)
                assert answer["value"] == len(stamps[key]), key
                if f"0_{answer['partition']}" in theirs:
                    assert (answer["stale"], answer["lag"]) == (True, 0), answer
                else:
                    assert answer["stale"] is False
    finally:
        for process in hosts.values():
            stop(process)
