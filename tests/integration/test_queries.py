"""Interactive queries against a worker group on a real broker: any worker answers any key
with the committed value, range and window queries, bad input, and 503 while restoring."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from streamer.partitioner import partition_for_key
from streamer.query import QueryClient, QueryError
from streamer.testing.kafka.pytest_plugin import TopicFactory
from tests.integration import apps
from tests.integration.query_apps import WINDOW_MS
from tests.integration.support import read_to_end, start_streamer_run, wait_for_group_caught_up

pytestmark = pytest.mark.kafka

APP = "tests.integration.query_apps:counts"
PARTITIONS = 4
KEYS = [f"k-{i}" for i in range(40)]
BASE_MS = 1_700_000_000_000
TOKEN = f"t-{uuid.uuid4().hex}"


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range")


def produce_counts(bootstrap: str, topic: str) -> dict[str, list[int]]:
    """Key ``k-i`` gets ``i % 7 + 1`` records, 3 s apart; returns each key's timestamps.
    Placed by murmur2 as Kafka's Java clients place keys."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    stamps: dict[str, list[int]] = {}
    for i, key in enumerate(KEYS):
        for j in range(i % 7 + 1):
            ts = BASE_MS + j * 3_000
            stamps.setdefault(key, []).append(ts)
            producer.produce(topic, json.dumps({"n": j}).encode(), key.encode(), timestamp=ts)
    assert producer.flush(30) == 0
    return stamps


def run_group(
    app_id: str,
    bootstrap: str,
    state: Path,
    port: int,
    log: Path,
    processes: int,
    env: dict[str, str],
) -> subprocess.Popen[bytes]:
    args = [
        APP,
        "--app-id",
        app_id,
        "--bootstrap-servers",
        bootstrap,
        "--processes",
        str(processes),
        "--state-dir",
        str(state),
        "--http-port",
        str(port),
    ]
    return start_streamer_run(args, {"STREAMER_HTTP_TOKEN": TOKEN, **env}, log)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def wait_for_tasks(client: QueryClient, workers: int, log: Path, timeout: float = 90) -> None:
    """Until ``workers`` members serve queries, and every task runs (none restoring)."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            seen = client.overview()["workers"]
        except QueryError as exc:
            seen = exc
        else:
            if settled(seen, client.overview()["lag"], workers):
                return
        time.sleep(0.2)
    raise AssertionError(f"tasks not all running: {seen}\n{log.read_text()[-3000:]}")


def settled(views: list[dict[str, Any]], lag: dict[str, Any], workers: int) -> bool:
    """Every member has tasks and they all run, each on the member the group description
    says owns its partition (a lone first member holds every partition for a moment)."""
    if len(views) != workers or any("error" in v or not v["tasks"] for v in views):
        return False
    if "error" in lag:
        return False
    running = {
        p: view["url"]
        for view in views
        for task in view["tasks"]
        if task["state"] == "running"
        for _topic, p in task["inputs"]
    }
    owners = {
        row["partition"]: (row["owner"] or {}).get("client_id", "").partition("|")[2]
        for row in lag["partitions"]
    }
    return len(running) == PARTITIONS and owners == running


@pytest.fixture(scope="module")
def group(kafka: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One group of two workers for the module's tests, in file order: the last one stops it
    (SIGTERM) and restarts the app from an empty state directory."""
    bootstrap = kafka.bootstrap_servers
    topics = TopicFactory(bootstrap, "query")
    source, sink = topics(PARTITIONS), topics(PARTITIONS)
    tmp = tmp_path_factory.mktemp("queries")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(apps.INPUT, source)
        env.setenv(apps.OUTPUT, sink)
        stamps = produce_counts(bootstrap, source)
        app_id = f"it-query-{uuid.uuid4().hex[:8]}"
        port = free_ports(2)
        log = tmp / "run.log"
        process = run_group(app_id, bootstrap, tmp / "state", port, log, 2, {})
        try:
            with QueryClient(f"http://127.0.0.1:{port}", token=TOKEN) as client:
                wait_for_tasks(client, 2, log)
            wait_for_group_caught_up(bootstrap, app_id, source, timeout=60)
            yield {
                "app_id": app_id,
                "bootstrap": bootstrap,
                "port": port,
                "stamps": stamps,
                "process": process,
                "log": log,
                "tmp": tmp,
                "source": source,
                "sink": sink,
            }
        finally:
            stop(process)


def final_counts(bootstrap: str, sink: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _p, _o, key, value in read_to_end(bootstrap, sink):
        assert key is not None
        assert value is not None
        counts[key.decode()] = max(counts.get(key.decode(), 0), json.loads(value)["count"])
    return counts


def test_any_worker_answers_any_key_with_the_counts_of_the_output_topic(
    group: dict[str, Any],
) -> None:
    expected = final_counts(group["bootstrap"], group["sink"])
    assert set(expected) == set(KEYS)
    urls = {f"http://127.0.0.1:{group['port'] + i}" for i in (0, 1)}
    for url in sorted(urls):
        served_by = set()
        with QueryClient(url, token=TOKEN) as client:
            for key in KEYS:
                answer = client.get("counts", key)
                assert (answer["found"], answer["value"]) == (True, expected[key]), key
                assert answer["partition"] == partition_for_key(key.encode(), PARTITIONS)
                served_by.add(answer["served_by"])
            assert client.get("counts", "no-such-key")["found"] is False
        # Each port answered some keys itself and forwarded the others to their owner.
        assert served_by == urls


def test_range_and_window_queries_return_the_stores_contents(group: dict[str, Any]) -> None:
    stamps: dict[str, list[int]] = group["stamps"]
    with QueryClient(f"http://127.0.0.1:{group['port'] + 1}", token=TOKEN) as client:
        rows = list(client.scan("counts", prefix="k-1", limit=3))
        wanted = sorted(k for k in KEYS if k.startswith("k-1"))
        assert [r["key"] for r in rows] == wanted
        assert [r["value"] for r in rows] == [len(stamps[k]) for k in wanted]
        page = client.range("counts", start="k-20", end="k-25")
        assert [r["key"] for r in page["rows"]] == [f"k-2{i}" for i in range(5)]
        assert page["next"] is None
        for key in ("k-6", "k-13", "k-27"):
            windows: dict[int, int] = {}
            for ts in stamps[key]:
                start = ts - ts % WINDOW_MS
                windows[start] = windows.get(start, 0) + 1
            got = client.windows("window-counts", key, 0, BASE_MS * 2)
            assert {r["start"]: r["value"] for r in got} == windows
            first = min(windows)
            assert client.windows("window-counts", key, first + 1, BASE_MS * 2) == [
                {"start": s, "value": c} for s, c in sorted(windows.items()) if s > first
            ]


def test_bad_input_gets_404_400_and_401(group: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{group['port']}"
    with QueryClient(url, token=TOKEN) as client:
        with pytest.raises(QueryError) as unknown:
            client.get("no-such-store", "k-1")
        assert unknown.value.status == 404
        assert "counts, window-counts" in unknown.value.message
        with pytest.raises(QueryError) as bad:
            client.get("counts", "%%%", encoding="base64")
        assert (bad.value.status, bad.value.message) == (
            400,
            "the key is not valid base64 (encoding=base64)",
        )
        with pytest.raises(QueryError) as wrong_kind:
            client.windows("counts", "k-1", 0, 1)
        assert wrong_kind.value.status == 400
    for token in ("wrong", None):
        with QueryClient(url, token=token) as client, pytest.raises(QueryError) as denied:
            client.get("counts", "k-1")
        assert denied.value.status == 401
    assert TOKEN not in group["log"].read_text()


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1700",
)
SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "artifacts" / "console.png"


def test_the_console_shows_the_app_live_and_looks_up_a_key(
    group: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "no chromium or chromedriver on PATH (scripts/check installs Debian's 'chromium' "
            "and 'chromium-driver' when it runs as root with apt-get)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager downloads nothing
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={group['tmp'] / 'chromium-profile'}"):
        options.add_argument(flag)
    expected = final_counts(group["bootstrap"], group["sink"])
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(f"http://127.0.0.1:{group['port'] + 1}/")
        wait = WebDriverWait(driver, 30)
        token = wait.until(lambda d: d.find_element(By.ID, "token"))
        wait.until(lambda d: token.is_displayed())  # the API answered 401: the page asks
        token.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#token-form button").click()

        def text(selector: str) -> str:
            return str(driver.find_element(By.CSS_SELECTOR, selector).text)

        wait.until(lambda d: "counts [count]" in text("#topology"))
        graph = text("#topology")
        for shown in (group["source"], group["sink"], "window-counts", "sub-topology 0"):
            assert shown in graph
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#lag tbody tr")) == PARTITIONS)
        for row in driver.find_elements(By.CSS_SELECTOR, "#lag tbody tr"):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            assert cells[0] == group["source"]
            assert cells[4] == "0"  # caught up
            assert "(http://127.0.0.1:" in cells[5]  # the owner and its query URL
        tasks = driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")
        assert sorted(t.find_element(By.TAG_NAME, "td").text for t in tasks) == [
            f"0_{p}" for p in range(PARTITIONS)
        ]
        assert all("running" in t.text for t in tasks)
        assert text("#dlq") == "0"
        Select(driver.find_element(By.ID, "lookup-store")).select_by_value("counts")
        driver.find_element(By.ID, "lookup-key").send_keys("k-12")
        driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
        wait.until(lambda d: '"found": true' in text("#lookup-result"))
        assert f'"value": {expected["k-12"]}' in text("#lookup-result")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#records tbody tr")) > 1)
        assert '"count"' in text("#records")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
    finally:
        driver.quit()


def test_a_key_on_a_restoring_partition_gets_503_then_its_value(group: dict[str, Any]) -> None:
    bootstrap, app_id = group["bootstrap"], group["app_id"]
    expected = final_counts(bootstrap, group["sink"])
    stop(group["process"])
    key = "k-5"
    partition = partition_for_key(key.encode(), PARTITIONS)
    # A long changelog for the key's partition, restored one record per loop iteration
    # into an empty state directory, keeps that partition restoring for seconds.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    changelog = f"{app_id}-counts-changelog"
    for i in range(100_000):
        producer.produce(changelog, struct.pack(">q", 1), f"junk-{i}".encode(), partition=partition)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    port = free_ports(1)
    log = group["tmp"] / "restore.log"
    process = run_group(
        app_id,
        bootstrap,
        group["tmp"] / "fresh-state",
        port,
        log,
        1,
        {"STREAMER_RESTORE_BATCH": "1"},
    )
    task = f"0_{partition}"
    try:
        with QueryClient(f"http://127.0.0.1:{port}", token=TOKEN) as client:
            deadline = time.monotonic() + 60
            state = None
            while state != "restoring":
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    tasks = {t["id"]: t for t in client.worker()["tasks"]}
                except QueryError:
                    tasks = {}
                state = tasks.get(task, {}).get("state")
                time.sleep(0.05)
            with pytest.raises(QueryError) as restoring:
                client.get("counts", key)
            assert restoring.value.status == 503
            assert restoring.value.retry_after == 1
            assert "restoring" in restoring.value.message
            wait_for_tasks(client, 1, log, timeout=120)
            assert client.get("counts", key)["value"] == expected[key]
    finally:
        stop(process)


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
