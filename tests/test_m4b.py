"""One-file audiobooks: chapter marks, tags and cover art read back with ffmpeg."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from llasa_cli.audio.audio_io import find_ffmpeg, load_audio
from llasa_cli.audio.m4b import ChapterMark, chapter_marks, ffmetadata_text, write_m4b
from llasa_cli.errors import ExportError, InvalidOptionError
from llasa_cli.text.metadata import BookMetadata

from .m4b_reader import extract_cover, parse_ffmetadata, read_audiobook_info

SR = 16_000
TOLERANCE_MS = 3

try:
    FFMPEG = find_ffmpeg()
except ExportError:  # pragma: no cover - the bundled imageio-ffmpeg makes this rare
    FFMPEG = None
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not available")


def tone(seconds: float, freq: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def cover(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cover") / "cover.jpg"
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


CHAPTERS = [("Opening; = # \\ credits", 1.25), ("Chapter One", 2.5), (None, 0.8)]


def test_chapters_tags_and_cover_read_back(tmp_path, cover):
    chapters = [(title, tone(seconds, 220 * (n + 1))) for n, (title, seconds) in enumerate(CHAPTERS)]
    meta = BookMetadata(
        title="The Lighthouse", author="A. Writer", narrator="Llasa", year=2024, genre="Fiction", cover=cover
    )
    path = write_m4b(chapters, SR, tmp_path / "book.m4b", meta)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["book.m4b"]  # no temp file left
    info = read_audiobook_info(path)
    assert [c.title for c in info.chapters] == ["Opening; = # \\ credits", "Chapter One", "Chapter 3"]
    expected_edges = np.cumsum([0] + [seconds * 1000 for _, seconds in CHAPTERS])
    for mark, start, end in zip(info.chapters, expected_edges[:-1], expected_edges[1:], strict=True):
        assert abs(mark.start_ms - start) <= TOLERANCE_MS and abs(mark.end_ms - end) <= TOLERANCE_MS
    tags = info.tags
    assert tags["title"] == tags["album"] == "The Lighthouse"
    assert tags["artist"] == "A. Writer" and tags["composer"] == "Llasa"
    assert tags["date"] == "2024" and tags["genre"] == "Fiction" and tags["media_type"] == "2"
    assert tags["major_brand"].strip() == "M4B"
    assert extract_cover(path) == cover.read_bytes()


def test_audio_is_where_the_marks_say(tmp_path):
    silence, click = np.zeros(SR, np.float32), tone(0.05, 1000, 0.5)
    chapters = [("A", np.concatenate([silence, click, silence])), ("B", np.concatenate([silence, click]))]
    path = write_m4b(chapters, SR, tmp_path / "b.m4b", BookMetadata(title="B"))
    decoded = load_audio(path)
    onsets = np.flatnonzero(np.abs(decoded) > 0.1)
    second_chapter = read_audiobook_info(path).chapters[1].start_ms / 1000
    assert abs(onsets[0] / SR - 1.0) < 0.005
    assert abs(onsets[onsets > (second_chapter + 0.5) * SR][0] / SR - (second_chapter + 1.0)) < 0.005
    assert extract_cover(path) is None


def test_marks_are_contiguous_and_escaped():
    marks = chapter_marks(["a", None], [SR + 1, SR // 3], SR)
    assert marks == [ChapterMark("a", 0, 1000), ChapterMark("Chapter 2", 1000, 1333)]
    text = ffmetadata_text(marks, BookMetadata(title="x=y;z#\\\nnext"))
    assert "title=x\\=y\\;z\\#\\\\ next" in text
    info = parse_ffmetadata(text)
    assert info.tags["title"] == "x=y;z#\\ next" and info.chapters == tuple(marks)


def test_bad_requests_are_domain_errors(tmp_path):
    with pytest.raises(InvalidOptionError):
        write_m4b([], SR, tmp_path / "x.m4b", BookMetadata())
    with pytest.raises(InvalidOptionError, match="cover"):
        write_m4b([("a", tone(0.5, 440))], SR, tmp_path / "x.m4b", BookMetadata(cover=tmp_path / "none.jpg"))
    with pytest.raises(InvalidOptionError, match="bitrate"):
        write_m4b([("a", tone(0.5, 440))], SR, tmp_path / "x.m4b", BookMetadata(), bitrate="-y")
    assert not list(tmp_path.iterdir())
