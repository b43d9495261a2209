"""Per-segment seeds: a segment's randomness depends on the run seed, its text and
the attempt number only, never on which batch or process it ran in."""

from __future__ import annotations

import hashlib

SEED_BITS = 63


def segment_seed(run_seed: int, text: str, attempt: int = 0) -> int:
    digest = hashlib.blake2b(f"{run_seed}\x1f{attempt}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << SEED_BITS) - 1)
