"""The pipeline: a manuscript in, chapter audio out, through a resumable job.

`synthesize(request, manuscript, plan)` (run.py) runs a `RunRequest` (request.py) and yields
events (events.py). Underneath, the `Synthesizer` (synthesizer.py) fixes the narrator, claims
segments a batch at a time (leases.py), speaks them (renderer.py: generate or search, decode,
verify, retry), records them in the job store, and writes each finished chapter
(chapter_writer.py) to its sink. The rest serve the commands that work on a job folder
(job_folder.py, job_commands.py, report.py), on existing audio (checks.py) and on stored voices
(voice_library.py); stop.py turns Ctrl-C into a clean stop. Many books and many devices:
library.py works a library of manuscripts with one set of models, workers.py one process per
device, dispatch.py with ray_workers.py a Ray cluster; placement.py picks one.
"""

from .batch_runner import BatchRunner
from .checks import ClipVerification, check_audio_files, verify_clip
from .events import (
    BookWritten,
    ChapterHeld,
    ChapterWritten,
    Event,
    JobFinished,
    JobOpened,
    NarratorFixed,
    RunStopped,
    SegmentDone,
    Waiting,
)
from .job_commands import Redo, StitchResult, job_status, prepare_redo, stitch_job
from .job_folder import LOG_NAME, WORK_DIR_NAME, find_job_folder, open_job, stored_request
from .leases import LeaseKeeper
from .library import Book, BookEnded, BookFailed, BookSkipped, BookStarted, is_library, library_books
from .placement import check_placement, synthesize_books
from .renderer import Renderer
from .report import verification_report
from .request import INLINE_SOURCE, STDOUT, RunRequest, check_request
from .run import check_models, load_plan, open_sink, read_input, resolve_voice, run_events, synthesize
from .run_context import RunContext
from .stop import StopController
from .synthesizer import SearchSetup, Synthesizer, VerifierSetup, choose_narrator_segment
from .voice_library import add_voice, list_voices, remove_voice

__all__ = [
    "INLINE_SOURCE",
    "LOG_NAME",
    "STDOUT",
    "WORK_DIR_NAME",
    "BatchRunner",
    "Book",
    "BookEnded",
    "BookFailed",
    "BookSkipped",
    "BookStarted",
    "BookWritten",
    "ChapterHeld",
    "ChapterWritten",
    "ClipVerification",
    "Event",
    "JobFinished",
    "JobOpened",
    "LeaseKeeper",
    "NarratorFixed",
    "Redo",
    "Renderer",
    "RunContext",
    "RunRequest",
    "RunStopped",
    "SearchSetup",
    "SegmentDone",
    "StitchResult",
    "StopController",
    "Synthesizer",
    "VerifierSetup",
    "Waiting",
    "add_voice",
    "check_audio_files",
    "check_models",
    "check_placement",
    "check_request",
    "choose_narrator_segment",
    "find_job_folder",
    "is_library",
    "job_status",
    "library_books",
    "list_voices",
    "load_plan",
    "open_job",
    "open_sink",
    "prepare_redo",
    "read_input",
    "remove_voice",
    "resolve_voice",
    "run_events",
    "stitch_job",
    "stored_request",
    "synthesize",
    "synthesize_books",
    "verification_report",
    "verify_clip",
]
