"""The table `scripts/bench.py` prints from its report (the same dict `--json` prints)."""

from __future__ import annotations

from typing import Any

MIB = 1 << 20


_COLUMNS = ("wall s", "LM s", "codec s", "verify s", "RTF", "tok/s", "LM %", "codec %", "verify %", "peak MiB")
_VERIFY_COLUMNS = {"verify s", "verify %"}


def _columns(verified: bool) -> list[str]:
    return [c for c in _COLUMNS if verified or c not in _VERIFY_COLUMNS]


def _header(verified: bool) -> str:
    return f"{'side':<34} " + " ".join(f"{c:>8}" for c in _columns(verified))


def _row(side: dict[str, Any], verified: bool) -> str:
    cells = {
        "wall s": f"{side['seconds']:8.2f}",
        "LM s": f"{side['lm_seconds']:8.2f}",
        "codec s": f"{side['codec_seconds']:8.2f}",
        "verify s": f"{side['verify_seconds']:8.2f}",
        "RTF": f"{side['real_time_factor']:8.3f}",
        "tok/s": f"{side['tokens_per_second']:8.1f}",
        "LM %": f"{100 * side['lm_share']:8.0f}",
        "codec %": f"{100 * side['codec_share']:8.0f}",
        "verify %": f"{100 * side['verify_share']:8.0f}",
        "peak MiB": f"{side['peak_memory_bytes'] / MIB:8.0f}",
    }
    return f"{side['name']:<34} " + " ".join(cells[c] for c in _columns(verified))


def _verify_line(verify: dict[str, Any]) -> str:
    if not verify["enabled"]:
        return "verifiers: off (--no-verify)"
    return (
        f"verifiers: {verify['asr']} ({verify['asr_parameters'] / 1e6:.3g}M parameters, at most "
        f"{verify['asr_decoder_steps']} decoder steps a transcript), {verify['speaker']} "
        f"({verify['speaker_parameters'] / 1e6:.3g}M), signal checks; verify batch size {verify['verify_batch_size']}; "
        "the baseline verifies each segment alone, the engine each batch in one call"
    )


def _print_sides(report: dict[str, Any]) -> None:
    base, engine, verified = report["baseline"], report["engine"], report["verify"]["enabled"]
    print(_verify_line(report["verify"]))
    print(_header(verified))
    print(_row(base, verified))
    print(_row(engine, verified))
    print(
        f"tokens: baseline {base['tokens']}, engine {engine['tokens']} (same: {report['tokens_match']}); "
        f"engine row-steps {engine['extra']['row_steps']} ({100 * engine['extra']['idle_row_share']:.0f}% on rows "
        f"already at their length; {engine['extra']['row_steps_full']} if finished rows stayed in the batch); "
        f"peak memory added: baseline {base['peak_memory_added_bytes'] / MIB:.0f} MiB, "
        f"engine {engine['peak_memory_added_bytes'] / MIB:.0f} MiB"
    )
    if skipped := base["extra"].get("asr_skipped", 0) + engine["extra"].get("asr_skipped", 0):
        print(f"note: {skipped} decoded clips were silent, so the verifier skipped their Whisper pass")
    print(f"throughput engine / baseline: {report['throughput_ratio']:.2f}x")


def print_table(report: dict[str, Any]) -> None:
    print(
        f"llasa-cli bench: --size {report['size']} on {report['device']} ({report['device_name']}, "
        f"{report['dtype']}, {report['threads']} threads); {report['segments']} segments of "
        f"{report['segment_seconds'][0]:g}-{report['segment_seconds'][1]:g} s = {report['audio_seconds']:.1f} s "
        f"of audio; batch size {report['batch_size']}; peak memory = {report['baseline']['peak_memory_kind']}"
    )
    _print_sides(report)
    beam, verified = report["beam"], report["verify"]["enabled"]
    if not beam["measured"]:
        print(f"beam: {beam['reason']}")
        return
    print(
        f"beam search on {beam['segments']} of the segments (M={beam['beam_candidates']}, "
        f"{beam['beam_step_seconds']:g} s steps; scorers: {beam['scorers']}):"
    )
    for side in (beam["beam_1"], beam["beam_n"]):
        scorers = side["extra"].get("scorer_seconds", 0.0)
        print(_row(side, verified) + f"   generated {side['tokens_generated']} tokens, scorers {scorers:.2f} s")
    print(f"--beam {beam['beam']} costs {beam['cost_ratio']:.2f}x the time of --beam 1")
