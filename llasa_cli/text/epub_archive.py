"""Reading the entries of an EPUB's ZIP archive, never more than a book can hold.

A ZIP entry can inflate a few kilobytes into gigabytes (a "zip bomb"), and its header
can lie about its size. An entry whose header declares more than MAX_ENTRY_BYTES is
refused before it is read; the others are read in chunks and refused as soon as the
entry passes MAX_ENTRY_BYTES, or all entries read together pass MAX_TOTAL_BYTES,
whatever the header said. Refusals are InputDecodeError (exit 12), like every other
unreadable EPUB.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import InputDecodeError

MIB = 2**20
# Far above any real chapter document or cover image (a whole novel in one XHTML file is a few MiB).
MAX_ENTRY_BYTES = 32 * MIB
MAX_TOTAL_BYTES = 256 * MIB
CHUNK_BYTES = MIB


class BoundedArchive:
    """`read(name)` of an open EPUB archive, within MAX_ENTRY_BYTES and MAX_TOTAL_BYTES."""

    def __init__(self, archive: zipfile.ZipFile, path: Path) -> None:
        self.archive = archive
        self.path = path
        self.total = 0

    def namelist(self) -> list[str]:
        return self.archive.namelist()

    def read(self, name: str) -> bytes:
        """The entry's bytes; KeyError when the archive has no such entry."""
        info = self.archive.getinfo(name)
        self._check(name, info.file_size)
        chunks: list[bytes] = []
        size = 0
        with self.archive.open(info) as entry:
            while chunk := entry.read(CHUNK_BYTES):
                size += len(chunk)
                self.total += len(chunk)
                self._check(name, size)
                chunks.append(chunk)
        return b"".join(chunks)

    def _check(self, name: str, size: int) -> None:
        if size > MAX_ENTRY_BYTES:
            raise InputDecodeError(
                f"{self.path}: {name} inflates to over {size // MIB} MiB, more than the "
                f"{MAX_ENTRY_BYTES // MIB} MiB an EPUB entry may hold (a damaged or hostile file)"
            )
        if self.total > MAX_TOTAL_BYTES:
            raise InputDecodeError(
                f"{self.path}: the EPUB inflates to over {MAX_TOTAL_BYTES // MIB} MiB (a damaged or hostile file)"
            )
