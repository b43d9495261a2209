"""Verifier-guided search: beam search and best-of-N over speech-token candidates.

`search_segments` (segment_search.py) is plain logic over protocols: the language model as a
`CandidateGenerator` (engine/protocols.py) and two `CandidateScorer`s. `make_scorers` (scorers.py)
builds those scorers from the codec and any `SegmentVerifier`. No torch, no particular verifier.
"""

from .scorers import Heard, Scorers, VerdictScorer, make_scorers
from .segment_search import (
    Candidate,
    CandidateScorer,
    SearchResult,
    SearchStats,
    best_of_seed,
    candidate_seed,
    search_segments,
)

__all__ = [
    "Candidate",
    "CandidateScorer",
    "Heard",
    "Scorers",
    "SearchResult",
    "SearchStats",
    "VerdictScorer",
    "best_of_seed",
    "candidate_seed",
    "make_scorers",
    "search_segments",
]
