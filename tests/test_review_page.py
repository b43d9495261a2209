"""`llasa review`: the page's data and HTML, the actions, and the review server's boundaries
(token, loopback, paths), on a job made by the real pipeline with fake models (tests/review_job.py)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from llasa_cli.constants import MAX_EDITED_TEXT_CHARS
from llasa_cli.errors import InvalidOptionError
from llasa_cli.job.store import JobStore
from llasa_cli.options import VerifyOptions
from llasa_cli.pipeline.review_actions import accept_segment, queue_redo
from llasa_cli.pipeline.review_page import ReviewJob, book_info, render_page, review_data, write_review_page
from llasa_cli.pipeline.review_server import LOOPBACK, ReviewServer, served_file
from llasa_cli.verify.textcompare import DiffPart, word_diff

from .review_job import FLAGGED_IDS, SUSPECT_ID, build_review_job, job_folder

CLI = [sys.executable, "-c", "import sys; from llasa_cli.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_review_job(tmp_path_factory.mktemp("review-job"))


@pytest.fixture
def out(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the finished job for a test that changes it."""
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    return copy


def review_job(out: Path) -> ReviewJob:
    return ReviewJob(job_folder(out), out)


def segments_by_id(out: Path) -> dict[str, dict]:
    job = review_job(out)
    return {s["id"]: s for s in review_data(job, job.file_link, book_info(job))["segments"]}


def llasa(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120)


# --- the page's data ---


def test_each_segment_is_classed_and_laid_against_the_thresholds(built: Path) -> None:
    segments = segments_by_id(built)
    assert sorted(i for i, s in segments.items() if s["cat"] == "flagged") == sorted(FLAGGED_IDS)
    assert segments[SUSPECT_ID]["cat"] == "suspect" and segments[SUSPECT_ID]["cap"]
    assert {s["cat"] for i, s in segments.items() if i not in (*FLAGGED_IDS, SUSPECT_ID)} == {"ok"}
    lamp = segments["1.2"]
    assert lamp["fail"] == ["wer"] and lamp["heard"] == "he lit the lamb and watched the sea"
    wer = next(row for row in lamp["checks"] if row[0] == "wer")
    assert wer == ["wer", 0.5, "<=", VerifyOptions().max_wer, False]


def test_the_transcript_difference_marks_the_misheard_word(built: Path) -> None:
    diff = segments_by_id(built)["2.2"]["diff"]
    assert [part for part in diff if part[0] != "equal"] == [["replace", "glass", "grass"]]
    # No normaliser: case and punctuation never differ, but a number written otherwise does.
    assert [p for p in word_diff("He said: twelve.", "he said 12") if p.tag != "equal"] == [
        DiffPart("replace", "twelve.", "12")
    ]
    assert [p.tag for p in word_diff("你好世界", "你好世", "zh")] == ["equal", "delete"]


def test_spans_are_where_each_segment_sits_in_its_chapter_file(built: Path) -> None:
    job = review_job(built)
    data = review_data(job, job.file_link, book_info(job))
    for chapter in data["chapters"]:
        info = sf.info(built / chapter["src"])
        spans = [s["span"] for s in data["segments"] if s["ch"] == chapter["number"]]
        assert all(0 < start < end <= info.duration for start, end in spans)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))  # in order, apart


def test_the_written_page_is_self_contained_and_carries_every_segment(out: Path) -> None:
    page = write_review_page(review_job(out)).read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert "Content-Security-Policy" in page
    data = json.loads(re.search(r'<script id="review-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert len(data["segments"]) == 7 and data["served"] is False
    assert "01-chapter-one-the-keeper.wav" in {c["src"] for c in data["chapters"]}


def test_manuscript_text_cannot_break_out_of_the_page(built: Path) -> None:
    job = review_job(built)
    data = review_data(job, job.file_link, book_info(job))
    data["segments"][0]["text"] = "</script><script>alert(1)</script><!--"
    data["title"] = "<img src=x onerror=alert(1)>"
    page = render_page(data, served=False)
    assert "<script>alert(1)" not in page and "<img src=x" not in page


# --- actions, and what status and report make of them ---


def test_an_accepted_segment_no_longer_counts_as_flagged(out: Path) -> None:
    accept_segment(job_folder(out), "1.2", "ann")
    assert segments_by_id(out)["1.2"]["cat"] == "accepted"
    report = json.loads(llasa("report", str(out), "--json").stdout)
    assert [row["id"] for row in report["flagged"]] == ["2.2"]
    assert [(row["id"], row["who"], row["failures"]) for row in report["accepted"]] == [("1.2", "ann", ["wer"])]
    status = json.loads(llasa("status", str(out), "--json").stdout)
    assert status["failed"] == 1
    with pytest.raises(InvalidOptionError, match="not flagged"):
        accept_segment(job_folder(out), "1.2", "ann")


def test_queueing_a_redo_with_new_text_keeps_the_manuscript_line_it_replaces(out: Path) -> None:
    queue_redo(job_folder(out), "2.2", "ann", text="  The glass   rattled in its frame. ")
    queue_redo(job_folder(out), "1.1", "bob")
    with JobStore.open(job_folder(out)) as store:
        assert [(q.chapter, q.index, q.who) for q in store.redo_queue()] == [(1, 1, "bob"), (2, 2, "ann")]
        (override,) = store.text_overrides()
    assert (override.original, override.text) == ("The glass shook in its frame.", "The glass rattled in its frame.")
    assert segments_by_id(out)["2.2"]["queued"]
    with pytest.raises(InvalidOptionError, match="empty"):
        queue_redo(job_folder(out), "2.2", "ann", text=" \n ")
    with pytest.raises(InvalidOptionError, match=str(MAX_EDITED_TEXT_CHARS)):
        queue_redo(job_folder(out), "2.2", "ann", text="word " * MAX_EDITED_TEXT_CHARS)
    with pytest.raises(InvalidOptionError, match="no segment 9.9"):
        queue_redo(job_folder(out), "9.9", "ann")


# --- the server ---


@pytest.fixture
def server(out: Path) -> Iterator[ReviewServer]:
    with ReviewServer(review_job(out), who="tester") as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield running
        running.shutdown()
    thread.join(timeout=5)


def request(
    server: ReviewServer, method: str, path: str, body: dict | None = None, headers: dict | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=10)
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, body=data, headers={**sent, **(headers or {})})
    response = connection.getresponse()
    return response.status, response.read(), response


def test_the_server_listens_on_loopback_only(server: ReviewServer) -> None:
    assert server.server_address[0] == "127.0.0.1" and server.port > 0
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address but loopback to try from")
    with pytest.raises(OSError), socket.create_connection((outward, server.port), timeout=2):
        pass


def _outward_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outward interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_every_request_needs_the_token(server: ReviewServer) -> None:
    token = server.token
    assert request(server, "GET", f"/{token}/review.html")[0] == 200
    for path in ("/review.html", "/", f"/{token[:-1]}x/review.html", f"/x{token}/01-chapter-one-the-keeper.wav"):
        assert request(server, "GET", path)[0] == 403, path
    assert request(server, "POST", "/api/accept", {"id": "1.2"})[0] == 403
    assert request(server, "GET", f"/{token}/review.html", headers={"Host": f"evil.example:{server.port}"})[0] == 403


def test_nothing_outside_the_job_is_served(server: ReviewServer, out: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    shutil.copy(out / "01-chapter-one-the-keeper.wav", secret)
    (out / "link.wav").symlink_to(secret)
    base = f"/{server.token}/"
    for path in ("../secret.wav", "%2e%2e/secret.wav", "link.wav", "_job/../../secret.wav", f"{tmp_path}/secret.wav",
                 "_job/job.sqlite3", "book.txt", "_job/"):  # fmt: skip
        status, body, _ = request(server, "GET", base + path)
        assert status == 403 and b"RIFF" not in body, path
    chapter = "01-chapter-one-the-keeper.wav"
    assert served_file(review_job(out), chapter) == (out / chapter).resolve()


def test_audio_is_served_in_byte_ranges(server: ReviewServer, out: Path) -> None:
    whole = (out / "01-chapter-one-the-keeper.wav").read_bytes()
    path = f"/{server.token}/01-chapter-one-the-keeper.wav"
    status, body, response = request(server, "GET", path, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == whole[100:200]
    assert response.getheader("Content-Range") == f"bytes 100-199/{len(whole)}"
    assert request(server, "GET", path, headers={"Range": "bytes=-10"})[1] == whole[-10:]
    assert request(server, "GET", path, headers={"Range": f"bytes={len(whole)}-"})[0] == 416
    assert request(server, "GET", path)[1] == whole


def test_actions_through_the_server_are_recorded_and_malformed_ones_refused(server: ReviewServer, out: Path) -> None:
    base = f"/{server.token}/api/"
    status, body, _ = request(server, "POST", base + "accept", {"id": "1.2"})
    assert status == 200 and json.loads(body)["segment"]["accepted"]["who"] == "tester"
    status, body, _ = request(server, "POST", base + "redo", {"id": "2.2", "text": "The glass rattled."})
    assert status == 200 and json.loads(body)["segment"]["queued"]
    assert request(server, "POST", base + "accept", {"id": "2.1"})[0] == 400  # passed: nothing to accept
    assert request(server, "POST", base + "redo", {"id": "2.2", "text": 5})[0] == 400
    assert request(server, "POST", base + "accept", None, {"Content-Type": "text/plain"})[0] == 400
    assert request(server, "POST", base + "delete", {"id": "2.2"})[0] == 404
    with JobStore.open(job_folder(out)) as store:
        assert [a.who for a in store.acceptances().values()] == ["tester"]
        assert [(q.chapter, q.index) for q in store.redo_queue()] == [(2, 2)]
    status, body, _ = request(server, "GET", base + "segments?ids=1.2,2.2")
    assert [s["id"] for s in json.loads(body)["segments"]] == ["1.2", "2.2"]


# --- the command ---


def test_review_writes_the_page_and_serve_stops_cleanly_on_ctrl_c(out: Path) -> None:
    written = llasa("review", str(out))
    assert written.returncode == 0, written.stderr
    assert (out / "review.html").is_file()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [*CLI, "review", str(out), "--serve", "--no-browser"]
    # Started with SIGINT ignored, as a shell's background job or a test runner's worker starts it:
    # Ctrl-C must stop the server all the same.
    ignore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=ignore_ctrl_c
    ) as process:
        try:
            assert process.stdout is not None
            url = ""
            while not url:
                line = process.stdout.readline()
                assert line, process.stderr.read() if process.stderr else ""
                url = line.removeprefix("review page: ").strip() if line.startswith("review page: ") else ""
            match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/([\w-]{40,})/review\.html", url)
            assert match, url
            connection = http.client.HTTPConnection(LOOPBACK, int(match[1]), timeout=10)
            connection.request("GET", f"/{match[2]}/review.html")
            assert connection.getresponse().status == 200
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=30)
        finally:
            if process.poll() is None:  # a failed step must fail the test, not hang it
                process.kill()
    assert process.returncode == 0, errors
    assert "review server stopped" in errors and "Traceback" not in errors
