"""Interactive queries against a worker group on a real broker: any worker answers any key
with the committed value, range and window queries, bad input, and 503 while restoring."""

from __future__ import annotations

import json
import shutil
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from streamer.cli.main import main as cli
from streamer.partitioner import partition_for_key
from streamer.query import QueryClient, QueryError
from streamer.testing.kafka.pytest_plugin import TopicFactory
from tests.integration import apps
from tests.integration.query_apps import WINDOW_MS
from tests.integration.query_support import (
    BASE_MS,
    KEYS,
    PARTITIONS,
    TOKEN,
    final_counts,
    free_ports,
    produce_counts,
    run_group,
    stop,
    wait_for_tasks,
)
from tests.integration.support import wait_for_group_caught_up

pytestmark = pytest.mark.kafka


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


def test_streamer_query_finds_a_worker_in_the_group_and_prints_the_answer(
    group: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMER_HTTP_TOKEN", TOKEN)
    expected = final_counts(group["bootstrap"], group["sink"])
    common = ["query", "--app-id", group["app_id"], "--bootstrap-servers", group["bootstrap"]]
    capsys.readouterr()
    assert cli([*common, "--store", "counts", "--key", "k-9"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["found"], answer["value"]) == (True, expected["k-9"])
    assert cli([*common, "--store", "counts", "--prefix", "k-3", "--limit", "50"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["key"] for r in rows] == sorted(k for k in KEYS if k.startswith("k-3"))
    assert cli([*common, "--store", "window-counts", "--key", "k-9", "--time-from", "0"]) == 0
    assert sum(r["value"] for r in json.loads(capsys.readouterr().out)) == expected["k-9"]
    assert cli([*common, "--store", "nope", "--key", "k-9"]) == 1
    assert "404: no store named 'nope'" in capsys.readouterr().err


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
