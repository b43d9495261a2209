"""Voice store (safetensors, atomic, validated names) and reference-clip checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.constants import CODEBOOK_SIZE, CODES_PER_SECOND, MAX_VOICE_SECONDS, SAMPLE_RATE
from llasa_cli.engine.protocols import VoicePrompt
from llasa_cli.errors import VoiceError
from llasa_cli.voices import store as voices_mod
from llasa_cli.voices.clips import check_voice_clip, cut_at_pause
from llasa_cli.voices.store import VoiceStore, default_voice_root

SR = SAMPLE_RATE


def codes(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CODEBOOK_SIZE, int(seconds * CODES_PER_SECOND), dtype=np.int64)


@pytest.fixture
def store(tmp_path: Path) -> VoiceStore:
    return VoiceStore(tmp_path / "voices")


# --- store ------------------------------------------------------------------------


def test_add_get_list_remove(store: VoiceStore) -> None:
    original = codes()
    voice = store.add("narrator_1", original.astype(np.int32), "  Hello there.  ")
    assert voice.text == "Hello there." and voice.seconds == pytest.approx(6.0)
    prompt = store.get("narrator_1")
    assert isinstance(prompt, VoicePrompt)
    assert prompt.codes.dtype == np.int64 and np.array_equal(prompt.codes, original)
    assert prompt.text == "Hello there."
    assert store.load("narrator_1").created == voice.created
    store.add("alice", codes(3.0, 1), "Hi.")
    rows = store.list()
    assert [(r.name, r.seconds, r.text, r.error) for r in rows] == [
        ("alice", 3.0, "Hi.", None),
        ("narrator_1", 6.0, "Hello there.", None),
    ]
    assert sorted(p.name for p in store.root.iterdir()) == ["alice.safetensors", "narrator_1.safetensors"]
    store.remove("alice")
    assert store.names() == ["narrator_1"]


def test_file_is_plain_safetensors(store: VoiceStore) -> None:
    store.add("v", codes(), "Some words.")
    raw = (store.root / "v.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert header["codes"]["dtype"] == "I64"
    assert header["__metadata__"]["text"] == "Some words."


def test_overwrite(store: VoiceStore) -> None:
    store.add("v", codes(seed=1), "One.")
    with pytest.raises(VoiceError, match="already exists"):
        store.add("v", codes(seed=2), "Two.")
    assert store.get("v").text == "One."
    store.add("v", codes(seed=2), "Two.", overwrite=True)
    assert store.get("v").text == "Two."
    assert [p.name for p in store.root.iterdir()] == ["v.safetensors"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x" * 65, "héllo", "a b", ".hidden", "v.safetensors"])
def test_invalid_names_cannot_escape(store: VoiceStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(VoiceError, match="invalid voice name"):
        store.add(name, codes(), "Text.")
    with pytest.raises(VoiceError, match="invalid voice name"):
        store.get(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unknown_voice_lists_known_names(store: VoiceStore) -> None:
    with pytest.raises(VoiceError, match="none yet"):
        store.get("bob")
    store.add("alice", codes(), "Hi.")
    store.add("carol", codes(), "Hi.")
    with pytest.raises(VoiceError, match="unknown voice 'bob'.*alice, carol"):
        store.get("bob")
    with pytest.raises(VoiceError, match="alice, carol"):
        store.remove("bob")


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (np.array([1, CODEBOOK_SIZE]), "0..65535"),
        (np.array([-1, 2]), "0..65535"),
        (np.zeros((2, 10), dtype=np.int64), "1-D"),
        (np.zeros(0, dtype=np.int64), "non-empty"),
        (np.zeros(10, dtype=np.float32), "integers"),
        (codes(MAX_VOICE_SECONDS + 5), "limit"),
    ],
)
def test_bad_codes(store: VoiceStore, bad: np.ndarray, words: str) -> None:
    with pytest.raises(VoiceError, match=words):
        store.add("v", bad, "Text.")


def test_transcript_required(store: VoiceStore) -> None:
    with pytest.raises(VoiceError, match="transcript"):
        store.add("v", codes(), "   ")


def corrupt_files(root: Path) -> dict[str, bytes]:
    from safetensors.numpy import save

    good = save({"codes": codes()}, metadata={"text": "Hi."})
    return {
        "garbage": b"\x80\x04 definitely not safetensors" * 10,
        "truncated": good[: len(good) // 2],
        "nocodes": save({"other": codes()}, metadata={"text": "Hi."}),
        "floats": save({"codes": np.zeros(5, dtype=np.float32)}, metadata={"text": "Hi."}),
        "notext": save({"codes": codes()}),
        "empty": b"",
    }


def test_corrupt_files_are_voice_errors(store: VoiceStore) -> None:
    store.root.mkdir(parents=True)
    files = corrupt_files(store.root)
    for name, data in files.items():
        (store.root / f"{name}.safetensors").write_bytes(data)
    for name in files:
        with pytest.raises(VoiceError, match=f"voice '{name}'"):
            store.get(name)
    store.add("fine", codes(), "Fine.")
    rows = {r.name: r for r in store.list()}
    assert rows["fine"].error is None
    assert all(rows[name].error for name in files)


def test_root_from_env_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    assert default_voice_root() == tmp_path / "home" / "voices"
    assert VoiceStore().root == tmp_path / "home" / "voices"
    monkeypatch.delenv("LLASA_HOME")
    root = default_voice_root()
    assert root.name == "voices" and "llasa-cli" in str(root)


def test_listing_a_store_that_does_not_exist(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path / "missing")
    assert store.list() == [] and store.names() == []
    assert not (tmp_path / "missing").exists()


def test_voice_files_are_written_atomically(store: VoiceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real = voices_mod.atomic_write_bytes

    def spy(path: Path, data: bytes) -> Path:
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(voices_mod, "atomic_write_bytes", spy)
    store.add("v", codes(), "Hi.")
    assert calls == [store.root / "v.safetensors"]


# --- reference clips --------------------------------------------------------------


def words_clip(seconds: float, gaps: dict[float, float], seed: int = 0) -> np.ndarray:
    """Noise-burst 'words' 0.3 s long with 0.08 s gaps; `gaps` maps gap start (s) -> length (s)."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * SR), dtype=np.float32)
    t = 0.0
    while t < seconds:
        if any(abs(t - start) < 1e-9 for start in gaps):
            t += gaps[min(gaps, key=lambda s: abs(s - t))]
            continue
        n0, n1 = int(t * SR), min(int((t + 0.3) * SR), len(audio))
        audio[n0:n1] = 0.3 * rng.standard_normal(n1 - n0)
        t = round(t + 0.38, 6)
    return audio


def test_long_clip_is_cut_in_a_pause() -> None:
    gap_start = 13.3
    clip = words_clip(18.0, {gap_start: 0.25})
    # Low hiss everywhere, quieter in the long gap: that gap is the quietest place.
    clip += 0.003 * np.random.default_rng(9).standard_normal(len(clip)).astype(np.float32)
    clip[int(gap_start * SR) : int((gap_start + 0.25) * SR)] *= 0.1
    out = cut_at_pause(clip)
    assert len(out) <= MAX_VOICE_SECONDS * SR
    assert gap_start * SR < len(out) < (gap_start + 0.25) * SR
    assert np.array_equal(out[: -SR // 100], clip[: len(out) - SR // 100])


def test_cut_never_splits_a_word() -> None:
    clip = words_clip(17.0, {})
    out = cut_at_pause(clip)
    around = clip[len(out) - 80 : len(out) + 80]  # +-5 ms around the cut
    assert np.max(np.abs(around)) == 0.0
    assert MAX_VOICE_SECONDS * SR - 3 * SR <= len(out) <= MAX_VOICE_SECONDS * SR


def test_short_clip_is_unchanged() -> None:
    clip = words_clip(10.0, {})
    assert np.array_equal(cut_at_pause(clip), clip)
    assert len(cut_at_pause(clip, max_seconds=12.0)) == len(clip)


def test_check_voice_clip_accepts_speechlike_audio() -> None:
    assert check_voice_clip(words_clip(6.0, {})) == []


@pytest.mark.parametrize(
    ("clip", "words"),
    [
        (np.zeros(5 * SR, dtype=np.float32), "silent"),
        (np.full(5 * SR, 1e-5, dtype=np.float32), "silent"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.concatenate([np.zeros(2 * SR), words_clip(0.5, {}), np.zeros(2 * SR)]).astype(np.float32), "only 0"),
        (np.array([np.nan] * SR, dtype=np.float32), "NaN"),
    ],
)
def test_check_voice_clip_refuses(clip: np.ndarray, words: str) -> None:
    with pytest.raises(VoiceError, match=words):
        check_voice_clip(clip)


def test_check_voice_clip_warns_about_clipping() -> None:
    clip = np.clip(words_clip(6.0, {}) * 10, -1, 1)
    warnings = check_voice_clip(clip)
    assert len(warnings) == 1 and "clipped" in warnings[0]


# --- clips named like ffmpeg protocols ------------------------------------------------


def tone_file(path: Path, seconds: float, freq: float) -> Path:
    sf.write(str(path), (0.4 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32), SR)
    return path


@pytest.mark.parametrize("name", ["concat:a.wav|b.wav", "http:clip.m4a"])
def test_a_clip_named_like_an_ffmpeg_protocol_is_read_as_that_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models, name: str
) -> None:
    """A clip only ffmpeg can decode (AAC), named so that ffmpeg would read `a.wav` + `b.wav` (or a
    URL) if the name reached it as a protocol: the voice must come from the clip's own 2.5 s."""
    import subprocess

    from llasa_cli.audio.audio_io import find_ffmpeg
    from llasa_cli.cli.app import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    tone_file(tmp_path / "a.wav", 1.0, 440.0)
    tone_file(tmp_path / "b.wav", 1.0, 440.0)
    source = tone_file(tmp_path / "source.wav", 2.5, 880.0)
    aac = ["-c:a", "aac", "-f", "mp4"]
    subprocess.run([find_ffmpeg(), "-nostdin", "-v", "error", "-i", str(source), *aac, f"file:{tmp_path / name}"],
                   check=True)  # fmt: skip
    code = main(["voice", "add", "narrator", name, "--text", "Hello.", "--codec", str(tiny_models.xcodec2),
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    seconds = len(VoiceStore().get("narrator").codes) / CODES_PER_SECOND
    assert seconds == pytest.approx(2.5, abs=0.1)  # not the 2 s of a.wav + b.wav
