"""The console in a real headless browser (Debian's chromium and chromedriver, driven by
Selenium) against a running stack on the real broker: `newswire up` (seed replay, pipeline,
console) and `newswire ingest` over a loopback publisher. Screenshots of every page are saved
under the test's output folder (``<tmp_path>/screenshots``)."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from newswire.console.readers import parse_metrics
from newswire.testing.http_server import LoopbackServer
from newswire.testing.publisher import LoopbackPublisher
from tests.integration.console_stack import console_stack
from tests.integration.harness import NewswireRun

pytestmark = pytest.mark.integration
SEED_TITLE = "Leader Urges Mounting Political Pressure on US, Israel to Stop Gaza Massacre"
HOSTILE_TITLE = 'Hostile <script>window.__injected = 1</script> "headline" & <b>bold</b>'


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "install Debian's chromium and chromium-driver (.ci/install-services does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()


def test_the_console_shows_the_stack_in_a_browser(
    newswire_run: NewswireRun, kafka_broker: Any, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    shots = tmp_path / "screenshots"
    shots.mkdir()
    broker = kafka_broker.settings.broker
    newswire_run.env.update(  # `newswire up` finds the session's broker running and uses it
        {
            "NEWSWIRE_BROKER__HOME": str(broker.home),
            "NEWSWIRE_BROKER__CACHE_DIR": str(broker.cache_dir),
            "NEWSWIRE_BROKER__PORT": str(broker.port),
            "NEWSWIRE_BROKER__CONTROLLER_PORT": str(broker.controller_port),
        }
    )
    producer = KafkaProducer(bootstrap_servers=newswire_run.bootstrap)
    producer.send(newswire_run.topics.raw, key=b"poison-1", value=b'{"title": "poison <script>x</script>"')
    producer.flush()
    producer.close()
    with LoopbackServer() as server:
        publisher = LoopbackPublisher(server, "loopback-news")
        publisher.publish(3)
        publisher.publish(1, titles=[HOSTILE_TITLE])
        sources = tmp_path / "sources.yaml"
        sources.write_text(publisher.sources_yaml())
        with console_stack(newswire_run, tmp_path, sources=sources, up=True) as stack:
            stack.wait(
                "the seed and the loopback articles", lambda: len(newswire_run.sqlite_rows()) >= 5, timeout_s=120
            )
            # The catch-up batches of `up` are counted where /metrics is served, as soon as
            # the continuous phase starts (they used to go to a registry nobody served).
            up_log = stack.logs / "up.log"
            stack.wait("the continuous phase", lambda: "running continuously" in up_log.read_text(), timeout_s=60)
            pipeline = _scrape(stack.pipeline_port)
            assert pipeline.total("newswire_batches_total") >= 1
            assert pipeline.total("newswire_records_consumed_total") >= 2  # the seed and the poison
            stack.wait(
                "two pipeline samples", lambda: len(stack.get_json("/api/pipeline")["throughput"][0]) >= 2, timeout_s=30
            )

            browser.get(stack.console_url + "/articles")
            titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#articles .title")]
            assert SEED_TITLE in titles
            assert HOSTILE_TITLE in titles, "the hostile title is shown as text"
            assert browser.execute_script("return window.__injected") is None, "and its script never ran"
            browser.save_screenshot(str(shots / "articles.png"))

            search = browser.find_element(By.NAME, "q")
            search.send_keys("Sudani Tehran")
            search.submit()
            stack.wait(
                "search results", lambda: browser.find_elements(By.CSS_SELECTOR, "#articles .title"), timeout_s=10
            )
            hits = browser.find_elements(By.CSS_SELECTOR, "#articles .title")
            # Generated stories reuse the seed's words, so they match too; the seed is among the hits.
            seed = next(h for h in hits if h.text == SEED_TITLE)
            assert "Sudani" in browser.find_element(By.CSS_SELECTOR, "#articles .snippet").text
            browser.save_screenshot(str(shots / "search.png"))
            seed.click()
            assert browser.find_element(By.ID, "article-title").text == SEED_TITLE
            assert "title" in browser.find_element(By.CSS_SELECTOR, "table.fields").text
            browser.save_screenshot(str(shots / "article.png"))

            browser.get(stack.console_url + "/sources")
            row = browser.find_element(By.CSS_SELECTOR, 'tr[data-source="loopback-news"]')
            status = row.find_element(By.CSS_SELECTOR, ".status").text
            assert status in ("healthy", "retrying", "failing", "silent", "drifting")
            assert status == "healthy"
            assert browser.execute_script("return document.querySelectorAll('.spark canvas').length") >= 1
            browser.save_screenshot(str(shots / "sources.png"))

            browser.get(stack.console_url + "/pipeline")
            points = stack.wait(
                "the throughput chart's points",
                lambda: browser.execute_script(
                    "const c = window.newswireCharts.throughput; return c && c.data[0].length"
                ),
                timeout_s=20,
            )
            assert points >= 1
            assert browser.execute_script("return document.querySelectorAll('#chart-throughput canvas').length") == 1
            lag_rows = browser.find_elements(By.CSS_SELECTOR, "#lag tbody tr")
            assert len(lag_rows) == newswire_run.topics.partitions
            browser.save_screenshot(str(shots / "pipeline.png"))

            browser.get(stack.console_url + "/dead-letters")
            letters = browser.find_elements(By.CSS_SELECTOR, "#dead-letters .dead-letter")
            poison = [d for d in letters if "poison-1" in d.text or f"{newswire_run.topics.raw}[" in d.text]
            assert poison, [d.text for d in letters]
            assert "not valid JSON" in poison[0].text
            poison[0].find_element(By.TAG_NAME, "summary").click()
            assert "poison <script>x</script>" in poison[0].find_element(By.CSS_SELECTOR, "pre.original").text
            browser.save_screenshot(str(shots / "dead-letters.png"))
            browser.get(stack.console_url + "/dead-letters?stage=decode")
            assert browser.find_elements(By.CSS_SELECTOR, "#dead-letters .dead-letter")
            browser.get(stack.console_url + "/dead-letters?stage=no-such-stage")
            assert not browser.find_elements(By.CSS_SELECTOR, "#dead-letters .dead-letter")
    assert sorted(p.name for p in shots.iterdir()) == [
        "article.png",
        "articles.png",
        "dead-letters.png",
        "pipeline.png",
        "search.png",
        "sources.png",
    ]


def _scrape(port: int) -> Any:
    import time

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode(), time.time())
