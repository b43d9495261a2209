"""A library in one `synth`: which manuscripts, one job per book, finished books left alone,
one set of models for every book, one budget (`--max-minutes`) for the whole library.

The library logic runs on the fake models (tests/fakes.py) through `synthesize_library`'s `load`
seam; one test runs the installed `llasa` on the tiny real-architecture models."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llasa_cli.engine.loading import SpeechModels
from llasa_cli.errors import InputNotFoundError, InvalidOptionError
from llasa_cli.options import EngineOptions, VerifyOptions
from llasa_cli.pipeline import RunRequest
from llasa_cli.pipeline.job_folder import LOG_NAME, WORK_DIR_NAME
from llasa_cli.pipeline.library import (
    UP_TO_DATE,
    BookEnded,
    BookFailed,
    BookSkipped,
    BookStarted,
    book_slug,
    find_manuscripts,
    is_library,
    library_books,
    synthesize_library,
)
from llasa_cli.pipeline.run import LoadedModels

from .fakes import FakeCodec, FakeGenerator
from .test_cli import installed_llasa

FINISHED = "Chapter One\n\nThe tide came in. Gulls cried over the wall.\n"
EDITED_BEFORE = "Chapter One\n\nShe lit the lamp.\n\nThe wind rose.\n"
EDITED_AFTER = "Chapter One\n\nShe lit the lamp.\n\nThe wind rose high over the dunes.\n"
NEW = "Chapter One\n\nMorning came at last.\n"


def template(out: Path) -> RunRequest:
    return RunRequest(
        source="<library>", output=str(out), engine=EngineOptions(batch_size=2), verify=VerifyOptions(enabled=False)
    )


class FakeLoader:
    """Loads the fake models, counting the loads and sharing one generator (to see its requests)."""

    def __init__(self) -> None:
        self.generator = FakeGenerator()
        self.loads = 0

    def __call__(self, request, voices, warn) -> LoadedModels:
        self.loads += 1
        return LoadedModels(request, SpeechModels(generator=self.generator, codec=FakeCodec(), device="cpu"))


def run_library(books, loader: FakeLoader, **kwargs) -> list:
    return list(synthesize_library(books, load=loader, **kwargs))


def file_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` with its modification time and bytes; SQLite's WAL index and log
    (which a read-only reader of a WAL database leaves behind) aside: the database itself counts."""
    files = [path for path in folder.rglob("*") if path.is_file() and not path.name.endswith(("-shm", "-wal"))]
    return {str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes()) for path in files}


# --- which manuscripts ------------------------------------------------------


def test_a_folder_a_glob_and_files_name_manuscripts_once_each_in_order(tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    for name in ("b.md", "a.txt", "c.epub", "notes.pdf"):
        (shelf / name).write_text("x")
    (shelf / "sub").mkdir()
    (shelf / "sub" / "d.txt").write_text("x")
    assert [p.name for p in find_manuscripts([str(shelf)])] == ["a.txt", "b.md", "c.epub"]
    assert [p.name for p in find_manuscripts([str(shelf / "*.txt"), str(shelf / "a.txt")])] == ["a.txt"]
    with pytest.raises(InputNotFoundError, match="no manuscript matches"):
        find_manuscripts([str(shelf / "*.rtf")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match="no manuscripts"):
        find_manuscripts([str(tmp_path / "empty")])


def test_only_several_files_a_folder_or_a_pattern_make_a_library(tmp_path: Path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("x")
    assert not is_library([str(book)])
    assert not is_library([str(tmp_path / "missing.txt")])  # a plain run reports the missing file
    assert is_library([str(book), str(book)])
    assert is_library([str(tmp_path)])
    assert is_library([str(tmp_path / "*.txt")])


def test_each_book_goes_into_its_own_folder_named_from_its_file(tmp_path: Path) -> None:
    for name in ("The_Lighthouse.txt", "b.md"):
        (tmp_path / name).write_text("x")
    books = library_books(template(tmp_path / "lib"), [str(tmp_path / "The_Lighthouse.txt"), str(tmp_path / "b.md")])
    assert [(b.slug, Path(b.output).relative_to(tmp_path)) for b in books] == [
        ("the-lighthouse", Path("lib/the-lighthouse")),
        ("b", Path("lib/b")),
    ]
    assert books[0].request.source.endswith("The_Lighthouse.txt")
    assert book_slug(Path("日本.txt")) == "book"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(output=""), "several manuscripts need -o FOLDER"),
        (dict(output="-"), "several manuscripts need -o FOLDER"),
        (dict(work_dir="job"), "--work-dir names one job"),
        (dict(metadata={"title": "T"}), "--title would give every book"),
        (dict(inline_text="hello"), "--text are one book"),
    ],
)
def test_options_that_cannot_apply_to_many_books_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    import dataclasses

    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InvalidOptionError, match=message):
        library_books(dataclasses.replace(template(tmp_path / "lib"), **change), [str(tmp_path / "a.txt")] * 2)


def test_two_manuscripts_with_one_slug_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "a.md").write_text("x")
    with pytest.raises(InvalidOptionError, match="would both go into"):
        library_books(template(tmp_path / "lib"), [str(tmp_path)])


# --- working the books ------------------------------------------------------


def write_books(shelf: Path, **texts: str) -> list[str]:
    shelf.mkdir(exist_ok=True)
    for name, text in texts.items():
        (shelf / f"{name}.txt").write_text(text)
    return [str(shelf / f"{name}.txt") for name in texts]


def test_finished_book_untouched_edited_book_redoes_its_changed_segment_new_book_made(tmp_path: Path) -> None:
    shelf, lib = tmp_path / "shelf", tmp_path / "lib"
    loader = FakeLoader()
    first = library_books(template(lib), write_books(shelf, finished=FINISHED, edited=EDITED_BEFORE))
    run_library(first, loader)
    finished_before = file_state(lib / "finished")
    assert any(name.endswith(".wav") for name in finished_before)

    write_books(shelf, edited=EDITED_AFTER, new=NEW)
    spoken_before = len(loader.generator.requests)
    events = run_library(library_books(template(lib), [str(shelf)]), loader)

    books = [e for e in events if isinstance(e, BookSkipped | BookStarted | BookEnded | BookFailed)]
    assert [(type(e).__name__, e.book.slug) for e in books] == [
        ("BookStarted", "edited"), ("BookEnded", "edited"),
        ("BookSkipped", "finished"),
        ("BookStarted", "new"), ("BookEnded", "new"),
    ]  # fmt: skip
    skipped = books[2]
    assert skipped.reason == UP_TO_DATE and skipped.status.finished == skipped.status.total == 2
    assert file_state(lib / "finished") == finished_before, "the finished book's files were touched"
    spoken = [r.text for r in loader.generator.requests[spoken_before:]]
    # The edited book: only its changed sentence; the new book: its narrator sample, then its segments.
    assert spoken.count("The wind rose high over the dunes.") == 1
    assert "She lit the lamp." not in spoken and "Chapter One" in spoken  # the new book's title
    assert not any("tide" in text for text in spoken)
    assert loader.loads == 2, "one load per library run, not per book"


def test_a_library_whose_books_are_all_finished_loads_no_model(tmp_path: Path) -> None:
    books = library_books(template(tmp_path / "lib"), write_books(tmp_path / "shelf", a=FINISHED, b=NEW))
    run_library(books, FakeLoader())
    again = FakeLoader()
    events = run_library(books, again)
    assert [type(e).__name__ for e in events] == ["BookSkipped", "BookSkipped"]
    assert again.loads == 0


def test_changed_options_or_a_missing_chapter_file_run_the_book_again(tmp_path: Path) -> None:
    import dataclasses

    from llasa_cli.options import StitchOptions

    books = library_books(template(tmp_path / "lib"), write_books(tmp_path / "shelf", a=FINISHED))
    run_library(books, FakeLoader())
    louder = [dataclasses.replace(b, request=dataclasses.replace(b.request, stitch=StitchOptions(loudness_lufs=-16.0)))
              for b in books]  # fmt: skip
    assert isinstance(run_library(louder, FakeLoader())[0], BookStarted)
    for wav in (tmp_path / "lib" / "a").glob("*.wav"):
        wav.unlink()
    loader = FakeLoader()
    events = run_library(louder, loader)
    assert isinstance(events[0], BookStarted)
    assert not loader.generator.requests, "only the chapter is written again, from stored codes"
    assert list((tmp_path / "lib" / "a").glob("*.wav"))


def test_one_budget_spans_the_library_and_a_broken_book_does_not_stop_the_others(tmp_path: Path) -> None:
    shelf = tmp_path / "shelf"
    paths = write_books(shelf, a=FINISHED, c=NEW, d=EDITED_BEFORE)
    (shelf / "b.txt").write_bytes(b"\x00\x01binary\x00")
    books = library_books(template(tmp_path / "lib"), [paths[0], str(shelf / "b.txt"), *paths[1:]])
    started: list[str] = []

    def stop_reason() -> str | None:
        return "time budget (--max-minutes) spent" if "c" in started else None

    events = []
    for event in synthesize_library(books, load=FakeLoader(), stop_reason=stop_reason):
        if isinstance(event, BookStarted):
            started.append(event.book.slug)
        events.append(event)
    outcomes = [(type(e).__name__, e.book.slug) for e in events if isinstance(e, BookSkipped | BookEnded | BookFailed)]
    assert outcomes == [("BookEnded", "a"), ("BookFailed", "b"), ("BookEnded", "c"), ("BookSkipped", "d")]
    assert events[-1].reason == "time budget (--max-minutes) spent"
    assert any(type(e).__name__ == "RunStopped" for e in events), "book c stopped itself"


# --- through the installed command --------------------------------------------


@pytest.mark.slow
def test_llasa_synth_of_a_library_one_line_per_book_and_the_worst_exit_code(tmp_path: Path, tiny_models) -> None:
    shelf, lib = tmp_path / "shelf", tmp_path / "lib"
    write_books(shelf, finished=FINISHED, edited=EDITED_BEFORE)
    base = [
        installed_llasa(), "synth", "-o", str(lib), "--model", str(tiny_models.llasa), "--codec",
        str(tiny_models.xcodec2), "--device", "cpu", "--no-verify", "--batch-size", "2",
    ]  # fmt: skip
    first = subprocess.run([*base, str(shelf)], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    finished_before = file_state(lib / "finished")
    log_before = (lib / "edited" / WORK_DIR_NAME / LOG_NAME).read_text().splitlines()

    write_books(shelf, edited=EDITED_AFTER, new=NEW)
    second = subprocess.run([*base, str(shelf / "*.txt")], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    lines = second.stderr.splitlines()
    assert "finished: up to date: 2 segments, nothing to do" in lines
    assert any(line.startswith("edited: complete: 3/3 segments") for line in lines), second.stderr
    assert any(line.startswith("new: complete: 2/2 segments") for line in lines), second.stderr
    assert file_state(lib / "finished") == finished_before
    redone = [line.split()[3:] for line in (lib / "edited" / WORK_DIR_NAME / LOG_NAME).read_text().splitlines()
              [len(log_before):] if line.split()[2] == "start"]  # fmt: skip
    assert sum(len(keys) for keys in redone) == 1, "only the edited sentence is synthesised again"
