"""The scaling study's own logic (pipeline/scaling.py), without models: which settings run, which
segments are sampled, what is recommended and when the curve is flat."""

from __future__ import annotations

import numpy as np
import pytest

from llasa_cli.errors import InvalidOptionError
from llasa_cli.options import (
    MODE_BEAM,
    MODE_BEST_OF,
    MODE_PLAIN,
    ScalingOptions,
    SearchOptions,
    TextOptions,
    parse_widths,
)
from llasa_cli.pipeline.scaling import (
    Compute,
    ScalingReport,
    SegmentResult,
    Setting,
    SettingResult,
    sample_segments,
    settings_for,
)
from llasa_cli.text.manuscript import manuscript_from_text
from llasa_cli.text.planner import build_plan


def test_plain_sampling_runs_once_for_both_modes():
    labels = [s.label for s in settings_for(ScalingOptions(widths=(4, 1, 2), mode="both"))]
    assert labels == ["plain", "beam 2", "beam 4", "best-of 2", "best-of 4"]
    assert [s.label for s in settings_for(ScalingOptions(widths=(2,), mode="best-of"))] == ["best-of 2"]
    beam = Setting(MODE_BEAM, 4).search_options(SearchOptions(beam_candidates=3))
    assert (beam.beam, beam.best_of, beam.mode, beam.beam_candidates) == (4, 1, MODE_BEAM, 3)
    assert Setting(MODE_PLAIN, 1).label == "plain"


@pytest.mark.parametrize("text", ["1,2,x", "", "1;2", "-1"])
def test_a_bad_width_list_is_refused(text):
    with pytest.raises(InvalidOptionError, match="--n"):
        ScalingOptions(widths=parse_widths(text))


def test_segments_are_sampled_one_per_stretch_of_the_book_and_seeded():
    book = "\n\n".join(f"Sentence number {n} is here." for n in range(40))
    plan = build_plan(manuscript_from_text(book), TextOptions(detect_chapters=False))
    picked = sample_segments(plan, 8, seed=3)
    positions = [plan.segments.index(s) for s in picked]
    assert len(picked) == 8 and positions == sorted(positions)
    assert [p // 5 for p in positions] == list(range(8))  # one from each fifth of five segments
    assert picked == sample_segments(plan, 8, seed=3) and picked != sample_segments(plan, 8, seed=4)
    assert sample_segments(plan, 100, seed=3) == list(plan.segments)


def result(label_mode: str, n: int, score: float, wall: float) -> SettingResult:
    segment = SegmentResult("1.0", "Hi.", 2.0, score, True, (), 0.1, 0.9, "hi", np.zeros(1, np.int64))
    return SettingResult(Setting(label_mode, n), (segment,), Compute(100 * n, 0.1, 0.5, wall))


def test_the_cheapest_setting_within_the_margin_of_the_best_is_recommended():
    report = ScalingReport(
        (result(MODE_PLAIN, 1, 0.80, 1.0), result(MODE_BEAM, 2, 0.905, 3.0), result(MODE_BEAM, 4, 0.91, 6.0),
         result(MODE_BEST_OF, 2, 0.85, 2.0)),
        margin=0.01,
    )  # fmt: skip
    assert report.best.setting.label == "beam 4"
    assert report.recommended.setting.label == "beam 2" and not report.flat
    assert report.summary().startswith("use beam 2")
    data = report.to_json()
    assert data["recommended"] == "beam 2" and data["best"] == "beam 4" and data["flat"] is False
    assert [s["rtf"] for s in data["settings"]] == [0.5, 1.5, 3.0, 1.0]


def test_a_flat_curve_recommends_plain_sampling_and_says_why():
    report = ScalingReport((result(MODE_PLAIN, 1, 0.500, 1.0), result(MODE_BEAM, 4, 0.505, 5.0)), margin=0.01)
    assert report.flat and report.recommended.setting.label == "plain"
    assert "the curve is flat" in report.summary() and "cannot tell these candidates apart" in report.summary()
