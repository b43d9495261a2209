"""Audio: reading clips, stitching segments into chapters, mastering, and writing files.

`ChapterSink`s (sinks.py) take a finished chapter's segment audio and stitch it (stitch.py):
trim, fade, pause, loudness or ACX mastering (acx.py); then write it atomically (export.py) as a
file per chapter, one m4b audiobook (m4b.py) or one WAV stream, with subtitles (subtitles.py) if
asked. audio_io.py reads any common audio file as 16 kHz mono; file_check.py checks finished files
against the ACX rules. NumPy, soundfile and ffmpeg; no torch.
"""

from .acx import AcxReport, acx_master, check_acx
from .audio_io import find_ffmpeg, load_audio, resample, to_mono, write_wav_bytes
from .export import atomic_write, atomic_write_bytes, export_audio, output_error
from .file_check import AUDIO_SUFFIXES, FileCheck, audio_files, check_file
from .m4b import write_m4b
from .sinks import ChapterSink, FolderSink, M4bSink, PendingBook, StreamSink, WrittenBook, WrittenChapter
from .stitch import ChapterAudio, render_chapter
from .subtitles import timed_segments, write_timings

__all__ = [
    "AUDIO_SUFFIXES",
    "AcxReport",
    "ChapterAudio",
    "ChapterSink",
    "FileCheck",
    "FolderSink",
    "M4bSink",
    "PendingBook",
    "StreamSink",
    "WrittenBook",
    "WrittenChapter",
    "acx_master",
    "atomic_write",
    "atomic_write_bytes",
    "audio_files",
    "check_acx",
    "check_file",
    "export_audio",
    "find_ffmpeg",
    "load_audio",
    "output_error",
    "render_chapter",
    "resample",
    "timed_segments",
    "to_mono",
    "write_m4b",
    "write_timings",
    "write_wav_bytes",
]
