"""What a job leaves in its output folder, through the `llasa` command: chapter files numbered by an
earlier manuscript are retired (never a file the job did not write, or one changed since), and the
temporary file of an export killed mid-write is removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from llasa_cli.audio.export import TEMP_SUFFIX, _create_temp

from .job_cli import llasa, model_args, ok

THREE = """Chapter One

The tide came in.

Chapter Two

She lit the lamp.

Chapter Three

Morning came.
"""
INSERTED = THREE.replace("Chapter Two", "Interlude\n\nGulls cried.\n\nChapter Two")
KILL_WAIT_S = 60.0


def test_an_inserted_chapter_retires_the_old_numbering_but_nothing_the_job_did_not_write(tmp_path, tiny_models):
    book, out = tmp_path / "book.txt", tmp_path / "out"
    book.write_text(THREE)
    ok(llasa("synth", book, "-o", out, *model_args(tiny_models), "--subtitles", "--quiet"))
    (out / "notes.txt").write_text("mine")
    (out / "04-appendix.wav").write_bytes(b"not the job's")
    with (out / "03-chapter-three.wav").open("ab") as edited:  # the user changed this one since
        edited.write(b"\0\0")

    book.write_text(INSERTED)
    ok(llasa("synth", book, "-o", out, *model_args(tiny_models), "--subtitles", "--quiet"))
    chapters = ["01-chapter-one", "02-interlude", "03-chapter-two", "04-chapter-three"]
    written = {f"{stem}{suffix}" for stem in chapters for suffix in (".wav", ".srt", ".vtt", ".json")}
    kept = {"notes.txt", "04-appendix.wav", "03-chapter-three.wav"}
    assert {p.name for p in out.iterdir() if p.is_file()} == written | kept
    log = (out / ".llasa" / "llasa.log").read_text().splitlines()
    removed = {line.split(" removed ")[1].split(":")[0] for line in log if " removed " in line}
    sidecars = {
        f"../{stem}{suffix}" for stem in ("02-chapter-two", "03-chapter-three") for suffix in (".srt", ".vtt", ".json")
    }
    assert removed == {"../02-chapter-two.wav"} | sidecars


def test_the_temporary_file_of_an_export_killed_mid_write_is_removed_by_the_next_run(tmp_path, tiny_models):
    book, out = tmp_path / "book.txt", tmp_path / "out"
    book.write_text("Chapter One\n\nThe tide came in.\n")
    ok(llasa("synth", book, "-o", out, *model_args(tiny_models), "--quiet"))
    writer = (
        "import sys, time; from pathlib import Path; from llasa_cli.audio.export import atomic_write\n"
        "def fill(temp, handle):\n    handle.write(b'RIFF'); handle.flush(); time.sleep(600)\n"
        "atomic_write(Path(sys.argv[1]), fill)"
    )
    killed = subprocess.Popen([sys.executable, "-c", writer, str(out / "01-chapter-one.wav")])
    deadline = time.monotonic() + KILL_WAIT_S
    while not list(out.glob(f"*{TEMP_SUFFIX}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [left] = list(out.glob(f"*{TEMP_SUFFIX}"))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    fd, live = _create_temp(out / "02-another-run.wav")  # this process is alive: its file stays
    os.close(fd)

    ok(llasa("synth", book, "-o", out, *model_args(tiny_models), "--quiet"))
    assert not left.exists() and live.exists()
    assert (out / "01-chapter-one.wav").read_bytes()[:4] == b"RIFF"
