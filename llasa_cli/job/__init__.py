"""The resumable job: one SQLite store per work folder, and the keys that decide what a rerun redoes.

`JobStore` (store.py) records each segment's codes once its batch is spoken and verified, hands out
segments to runs under leases, and reports progress; its records are in records.py and its schema in
schema.py. `keys_for` and `chapter_digest` (keys.py) name a segment by everything that changes its
codes, and a chapter by everything that changes its file. NumPy and SQLite only.
"""

from .keys import chapter_digest, keys_for, manuscript_fingerprint, segment_key
from .records import ChapterStatus, JobInfo, JobStatus, OutputRecord, PlanRecord, PlanRow, SegmentRecord
from .schema import DB_NAME
from .store import JobStore, decode_codes, encode_codes

__all__ = [
    "DB_NAME",
    "ChapterStatus",
    "JobInfo",
    "JobStatus",
    "JobStore",
    "OutputRecord",
    "PlanRecord",
    "PlanRow",
    "SegmentRecord",
    "chapter_digest",
    "decode_codes",
    "encode_codes",
    "keys_for",
    "manuscript_fingerprint",
    "segment_key",
]
