"""`llasa report`: what verification and search found in a job, read from its store alone.

Each finished segment's stored verdict (`Verdict.to_dict`) gives its scores; laid against the
job's thresholds (`verdict_checks`) they say why a flagged segment failed. Search statistics
(`SearchStats`, stored with each searched segment's timings) add up to what the search cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from ..job.records import PlanRecord
from ..job.review_state import Acceptance
from ..job.store import JobStore
from ..options import VerifyOptions
from ..verify.verdict import CER, SIMILARITY, WER, Verdict, verdict_checks
from .job_folder import stored_request

REPORT_METRICS = (WER, CER, SIMILARITY)
# Search statistics summed over the searched segments (names as in SearchStats).
SEARCH_TOTALS = (
    "candidates",
    "tokens_generated",
    "lm_forward_calls",
    "lm_seconds",
    "partial_scored",
    "partial_scorer_seconds",
    "final_scored",
    "final_scorer_seconds",
    "codec_seconds",
)


def verification_report(folder: Path) -> dict[str, Any]:
    """Flagged segments (text vs transcript, scores against thresholds, attempts), flagged takes a
    listener accepted, mean scores over the verified segments, retries, and what the search cost."""
    with JobStore.open(folder, read_only=True) as store:
        thresholds = job_thresholds(store)
        finished = [p for p in store.plan_records() if p.record.status == "done"]
        acceptances = store.acceptances()
    verdicts = {_segment_id(p): Verdict.from_dict(p.record.scores) for p in finished if p.record.scores}
    flagged = [_flagged_row(p, verdicts.get(_segment_id(p)), thresholds) for p in finished if p.record.flagged]
    means = {f"mean_{name}": _mean([v.metrics[name] for v in verdicts.values() if name in v.metrics])
             for name in REPORT_METRICS}  # fmt: skip
    work = sum((p.record.timings or {}).get("seconds", 0.0) for p in finished)
    verifying = sum((p.record.timings or {}).get("verify_seconds", 0.0) for p in finished)
    return {
        "segments_done": len(finished),
        "segments_verified": len(verdicts),
        "flagged": flagged,
        "accepted": [_accepted_row(p, acceptances[p.record.key]) for p in finished if p.record.key in acceptances],
        **means,
        "retries": sum(max(0, p.record.attempts - 1) for p in finished),
        "verify_time_share": round(verifying / (work + verifying), 4) if work + verifying else None,
        "search": search_totals([(p.record.timings or {}).get("search") for p in finished]),
    }


def search_totals(stats: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The stored search statistics of segments, summed; None when no segment was searched."""
    searched = [s for s in stats if s]
    if not searched:
        return None
    modes = sorted({f"{s['mode']} {s['width']}" for s in searched})
    totals = {name: round(sum(float(s.get(name, 0)) for s in searched), 4) for name in SEARCH_TOTALS}
    return {"segments_searched": len(searched), "modes": modes, **totals}


def job_thresholds(store: JobStore) -> VerifyOptions:
    """The verification options of the job's last `synth`; the defaults for a job that a library
    caller ran without recording a request."""
    job = store.job()
    if job is None or "request" not in job.options:
        return VerifyOptions()
    request, _ = stored_request(store)
    return request.verify


def _flagged_row(position: PlanRecord, verdict: Verdict | None, options: VerifyOptions) -> dict[str, Any]:
    return {
        "id": _segment_id(position),
        "voice": position.voice,  # the character who speaks it; None: the narrator
        "text": position.text,
        "transcript": None if verdict is None else verdict.transcript,
        "failures": [] if verdict is None else list(verdict.failures),
        "metrics": {} if verdict is None else {k: round(v, 4) for k, v in verdict.metrics.items()},
        "checks": [] if verdict is None else [row.to_dict() for row in verdict_checks(verdict, options)],
        "attempts": position.record.attempts,
    }


def _accepted_row(position: PlanRecord, acceptance: Acceptance) -> dict[str, Any]:
    """A flagged take a listener accepted (`llasa review`): no longer flagged, but not forgotten."""
    return {"id": _segment_id(position), "who": acceptance.who, "at": acceptance.at,
            "failures": list(acceptance.failures)}  # fmt: skip


def _segment_id(position: PlanRecord) -> str:
    return f"{position.chapter}.{position.index}"


def _mean(values: list[float]) -> float | None:
    return round(mean(values), 4) if values else None
