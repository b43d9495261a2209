"""The review page in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium) opens review.html from disk and from the review server, plays a segment from
its chapter file, and through the served page accepts one segment and queues another."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from llasa_cli.job.store import JobStore
from llasa_cli.pipeline.job_commands import prepare_queued_redo
from llasa_cli.pipeline.review_page import PAGE_SIZE, ReviewJob, write_review_page
from llasa_cli.pipeline.review_server import ReviewServer
from llasa_cli.testing.browser import chromium_missing, headless_chromium

from .review_job import FLAGGED_IDS, SUSPECT_ID, build_review_job, job_folder, speak_again

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 30.0
CHAPTER_ONE = "01-chapter-one-the-keeper.wav"
# Plays a card's take ("audio.take") or previous take ("audio.prev") to its end: where it started and
# stopped, the file's duration and the ready state.
PLAY_TAKE = """
const [id, which, done] = arguments;
const audio = document.getElementById(`seg-${id}`).querySelector(which);
const seen = {};
audio.addEventListener("playing", () => { seen.started = audio.currentTime; }, {once: true});
audio.addEventListener("pause", () => done({...seen, stopped: audio.currentTime, duration: audio.duration,
    ready: audio.readyState, src: audio.currentSrc}), {once: true});
audio.addEventListener("error", () => done({error: String(audio.error && audio.error.message)}));
audio.play().catch((error) => done({error: String(error)}));
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_review_job(tmp_path_factory.mktemp("review-browser-job"))


@pytest.fixture
def out(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    return copy


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = headless_chromium(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


def open_page(browser: Any, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")


def card_ids(browser: Any) -> list[str]:
    return browser.execute_script("return [...document.querySelectorAll('#segments .segment')].map(n => n.dataset.id)")


def choose(browser: Any, select: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, select)).select_by_value(value)


def click(browser: Any, selector: str) -> None:
    """Click as a listener would, with the element scrolled clear of the chapter player's bar."""
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.CSS_SELECTOR, selector)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def span_of(browser: Any, segment_id: str) -> list[float]:
    script = "return JSON.parse(document.getElementById('review-data').textContent).segments"
    return browser.execute_script(f"{script}.find(s => s.id === arguments[0]).span", segment_id)


def test_the_page_from_disk_plays_a_segment_from_its_chapter_file(browser: Any, out: Path) -> None:
    page = write_review_page(ReviewJob(job_folder(out), out))
    open_page(browser, page.as_uri())
    assert card_ids(browser) == sorted(FLAGGED_IDS)  # flagged first: the default filter
    start, end = span_of(browser, "1.2")
    played = browser.execute_async_script(PLAY_TAKE, "1.2", "audio.take")
    assert "error" not in played, played
    assert played["ready"] >= 1 and played["src"].endswith(f"{CHAPTER_ONE}#t={start},{end}")
    assert played["duration"] == pytest.approx(sf.info(out / CHAPTER_ONE).duration, abs=0.05)
    # The media fragment plays the segment's span and stops at its end: its duration is end - start.
    assert played["started"] == pytest.approx(start, abs=0.1)
    assert played["stopped"] == pytest.approx(end, abs=0.3)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith("file://") for name in resources), resources  # nothing from the network


def test_filters_and_the_chapter_player(browser: Any, out: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, write_review_page(ReviewJob(job_folder(out), out)).as_uri())
    choose(browser, "filter", "suspect")
    assert card_ids(browser) == [SUSPECT_ID]
    choose(browser, "filter", "all")
    assert card_ids(browser) == ["1.2", "2.2", "1.3", "1.0", "1.1", "2.0", "2.1"]  # flagged, suspect, the rest
    choose(browser, "failure", "wer")
    assert card_ids(browser) == ["1.2", "2.2"]
    choose(browser, "failure", "")
    choose(browser, "chapter", "2")
    assert card_ids(browser) == ["2.2", "2.0", "2.1"]
    start = span_of(browser, "2.1")[0]
    click(browser, "#seg-2\\.1 .jump")
    player = browser.find_element(By.ID, "chapter-audio")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.execute_script("return arguments[0].currentTime", player) > start)
    assert player.get_attribute("src").endswith(f"02-chapter-two-the-storm.wav#t={start}")
    browser.execute_script("arguments[0].pause()", player)


@pytest.fixture
def served(out: Path) -> Iterator[ReviewServer]:
    with ReviewServer(ReviewJob(job_folder(out), out), who="tester") as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server
        server.shutdown()
    thread.join(timeout=5)


def test_the_served_page_accepts_one_segment_and_queues_another(browser: Any, out: Path, served: ReviewServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, served.url)
    played = browser.execute_async_script(PLAY_TAKE, "2.2", "audio.take")  # audio over HTTP, sought by byte ranges
    start, end = span_of(browser, "2.2")
    assert "error" not in played and played["stopped"] == pytest.approx(end, abs=0.3), played
    assert played["started"] == pytest.approx(start, abs=0.1)

    click(browser, "#seg-1\\.2 .accept")
    status = browser.find_element(By.CSS_SELECTOR, "#seg-1\\.2 .action-status")
    WebDriverWait(browser, WAIT_S).until(lambda d: status.text == "accepted")
    click(browser, "#seg-2\\.2 .edit")
    editor = browser.find_element(By.CSS_SELECTOR, "#seg-2\\.2 .editor textarea")
    editor.clear()
    editor.send_keys("The glass rattled in its frame.")
    click(browser, "#seg-2\\.2 .save-edit")
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#seg-2\\.2 .action-status").text.startswith("queued")
    )
    badges = browser.find_element(By.CSS_SELECTOR, "#seg-1\\.2 .badges").text
    assert "accepted" in badges and "flagged" not in badges

    with JobStore.open(job_folder(out)) as store:
        positions = {f"{p.chapter}.{p.index}": p.record.key for p in store.plan_records()}
        acceptance = store.acceptances()[positions["1.2"]]
        assert acceptance.who == "tester" and acceptance.failures == ("wer",)
        assert [(q.chapter, q.index) for q in store.redo_queue()] == [(2, 2)]
        assert [o.text for o in store.text_overrides()] == ["The glass rattled in its frame."]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = "import sys; from llasa_cli.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "report", str(out), "--json"], capture_output=True,
                            text=True, env=env, timeout=120)  # fmt: skip
    report = json.loads(result.stdout)
    assert [row["id"] for row in report["flagged"]] == ["2.2"]
    assert [row["id"] for row in report["accepted"]] == ["1.2"]


def test_the_new_take_plays_beside_the_previous_once_the_redo_is_done(
    browser: Any, out: Path, served: ReviewServer
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, served.url)
    old_start, old_end = span_of(browser, "2.2")
    click(browser, "#seg-2\\.2 .redo")
    card = "#seg-2\\.2"
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"{card} .action-status").text.startswith("queued")
    )
    prepare_queued_redo(job_folder(out))  # what llasa redo OUTDIR --queued runs, with the fake models
    speak_again(out)
    previous = browser.find_element(By.CSS_SELECTOR, f"{card} .previous")
    WebDriverWait(browser, WAIT_S).until(lambda d: previous.is_displayed())  # the page asked the server
    assert browser.find_element(By.CSS_SELECTOR, f"{card} .take-label").text.startswith("New take")
    assert browser.find_element(By.CSS_SELECTOR, f"{card} .prev-label").text.startswith("Previous take (take 0")
    played = browser.execute_async_script(PLAY_TAKE, "2.2", "audio.prev")
    assert "error" not in played, played
    assert played["duration"] == pytest.approx(old_end - old_start, abs=0.02)  # the old take, cut from its chapter
    assert played["stopped"] == pytest.approx(played["duration"], abs=0.1)


def test_a_long_job_is_drawn_a_page_at_a_time(browser: Any, tmp_path: Path) -> None:
    """The benchmark's synthetic job (scripts/bench_review.py), small: 129 segments in 3 chapters."""
    spec = importlib.util.spec_from_file_location("bench_review", ROOT / "scripts" / "bench_review.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.build_job(tmp_path, 130, 3)
    open_page(browser, write_review_page(ReviewJob(job_folder(out), out)).as_uri())
    choose(browser, "filter", "all")
    pages = []
    for _ in range(3):
        pages.append(card_ids(browser))
        assert browser.execute_script("return document.querySelectorAll('#segments audio[preload=none]').length")
        click(browser, "#next")
    assert [len(page) for page in pages] == [PAGE_SIZE, PAGE_SIZE, 129 - 2 * PAGE_SIZE]
    assert len({i for page in pages for i in page}) == 129
    assert browser.find_element("id", "page").text == "page 3 of 3"
    audio = "[...document.querySelectorAll('audio')]"
    assert browser.execute_script(f"return {audio}.filter(a => a.readyState > 0).length") == 0  # none played yet
