"""Voice clips through the real path: `voices.encode_clip` / `resolve_voice` with the tiny codec,
and `llasa voice add|list|remove` + `synth --voice NAME` through `llasa_cli.cli.main`.

Clips are made here with numpy + soundfile (and ffmpeg for mp3/m4a). Every refusal must name the
file and say what to do; on the command line it is exit code 23 and one line on stderr."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from llasa_cli.audio.audio_io import find_ffmpeg
from llasa_cli.cli.app import main
from llasa_cli.constants import CODES_PER_SECOND, MAX_VOICE_SECONDS, SAMPLE_RATE
from llasa_cli.errors import ExportError, VoiceError
from llasa_cli.job.store import JobStore
from llasa_cli.voices.resolve import encode_clip, resolve_voice
from llasa_cli.voices.store import VoiceStore

CD_RATE = 48_000
CODE_SLACK = 2  # the codec pads a clip's end to whole codes
# Imperatives the error messages use to say what to do.
ADVICE_WORDS = ("give", "record", "trim", "pass", "check", "needs at least")


def speechlike(seconds: float, rate: int = SAMPLE_RATE, level: float = 0.3) -> np.ndarray:
    """A 220 Hz tone with a syllable-rate wobble: loud enough, never silent, never clipped."""
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 220 * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    sf.write(path, audio, rate)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private LLASA_HOME, so stored voices land in the test's folder."""
    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class RecordingCodec:
    """The tiny codec, remembering how many samples it was asked to encode."""

    def __init__(self, codec) -> None:
        self.codec = codec
        self.encoded: list[int] = []

    def encode(self, audio: np.ndarray) -> np.ndarray:
        self.encoded.append(len(audio))
        return self.codec.encode(audio)

    def decode(self, codes):
        return self.codec.decode(codes)


# --- clips that cannot make a voice ---------------------------------------------------------


def _unreadable(d: Path) -> Path:
    path = d / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(20_000))  # not audio in any format
    return path


def _directory(d: Path) -> Path:
    (d / "takes.wav").mkdir()
    return d / "takes.wav"


def _empty(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


BAD_CLIPS = {
    "unreadable": (_unreadable, "cannot read audio file"),
    "directory": (_directory, "folder"),
    "missing": (lambda d: d / "missing.wav", "not found"),
    "empty": (_empty, "empty"),
    "silent": (lambda d: write(d / "silent.wav", np.zeros(2 * SAMPLE_RATE, dtype=np.float32)), "silent"),
    "too short": (lambda d: write(d / "short.wav", speechlike(0.3)), "0.3 s of sound"),
}


def _assert_names_file_and_advises(message: str, clip: Path, fragment: str) -> None:
    assert str(clip) in message
    assert fragment in message
    assert any(word in message for word in ADVICE_WORDS), message
    assert "\n" not in message


@pytest.mark.parametrize("case", BAD_CLIPS)
def test_bad_clip_is_refused_naming_it(tmp_path: Path, tiny_codec, case: str) -> None:
    make, fragment = BAD_CLIPS[case]
    clip = make(tmp_path)
    codec = RecordingCodec(tiny_codec)
    with pytest.raises(VoiceError) as info:
        encode_clip(clip, "Some words.", codec, None, "cpu")
    _assert_names_file_and_advises(str(info.value), clip, fragment)
    assert codec.encoded == []  # refused before the codec runs


@pytest.mark.parametrize("case", ["unreadable", "directory", "silent", "too short"])
def test_bad_clip_on_the_command_line(tmp_path: Path, home: Path, tiny_models, capfd, case: str) -> None:
    make, fragment = BAD_CLIPS[case]
    clip = make(tmp_path)
    args = ["voice", "add", "narrator", str(clip), "--text", "Hi.", "--codec", str(tiny_models.xcodec2)]
    assert main([*args, "--device", "cpu"]) == VoiceError.exit_code == 23
    err = capfd.readouterr().err  # capfd: also what C libraries or ffmpeg would print
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llasa: error: "), err
    _assert_names_file_and_advises(lines[0], clip, fragment)
    assert VoiceStore().names() == []


def test_empty_transcript_is_refused_before_reading_the_clip(tmp_path: Path, tiny_codec) -> None:
    with pytest.raises(VoiceError, match="transcript is empty.*--voice-text"):
        encode_clip(tmp_path / "never-read.wav", "   ", tiny_codec, None, "cpu")


def test_clipped_clip_is_used_with_a_warning(tmp_path: Path, tiny_codec) -> None:
    clip = write(tmp_path / "hot.wav", np.clip(speechlike(1.5, level=2.0), -1.0, 1.0))
    warnings: list[str] = []
    prompt = encode_clip(clip, "Loud words.", tiny_codec, None, "cpu", warn=warnings.append)
    assert len(prompt.codes) > 0
    assert len(warnings) == 1 and str(clip) in warnings[0] and "clipped" in warnings[0]


# --- long clips -----------------------------------------------------------------------------

PAUSE_AT_S = 13.0
PAUSE_S = 0.3


def long_clip(path: Path, seconds: float = 25.0) -> Path:
    """Speech-like sound for `seconds`, with one pause (silence) starting at PAUSE_AT_S."""
    audio = speechlike(seconds)
    audio[int(PAUSE_AT_S * SAMPLE_RATE) : int((PAUSE_AT_S + PAUSE_S) * SAMPLE_RATE)] = 0.0
    return write(path, audio)


def test_long_clip_with_a_transcript_must_be_trimmed(tmp_path: Path, tiny_codec) -> None:
    clip = long_clip(tmp_path / "reading.wav")
    with pytest.raises(VoiceError) as info:
        encode_clip(clip, "What the whole clip says.", RecordingCodec(tiny_codec), None, "cpu")
    message = str(info.value)
    assert str(clip) in message and "25.0 s" in message and "trim it" in message
    assert f"{MAX_VOICE_SECONDS:.0f} s" in message


def test_long_clip_without_a_transcript_is_cut_at_the_pause_and_transcribed(
    tmp_path: Path, home: Path, tiny_models, capsys
) -> None:
    if tiny_models.whisper is None:
        pytest.skip("openai-whisper is not installed")
    clip = long_clip(tmp_path / "reading.wav")
    args = ["voice", "add", "reader", str(clip), "--codec", str(tiny_models.xcodec2), "--device", "cpu"]
    assert main([*args, "--asr-model", str(tiny_models.whisper)]) == 0
    assert "stored voice 'reader'" in capsys.readouterr().out
    voice = VoiceStore().load("reader")
    assert voice.seconds <= MAX_VOICE_SECONDS
    assert PAUSE_AT_S - 0.05 <= voice.seconds <= PAUSE_AT_S + PAUSE_S  # cut inside the pause, not in a word
    assert voice.text  # the tiny random Whisper's words, whatever they are


# --- formats and rates ----------------------------------------------------------------------


def test_stereo_48k_clip_encodes_as_mono_16k(tmp_path: Path, tiny_codec) -> None:
    seconds = 2.0
    mono = speechlike(seconds, rate=CD_RATE)
    clip = write(tmp_path / "stereo.wav", np.stack([mono, 0.5 * mono], axis=1), CD_RATE)
    assert sf.info(clip).channels == 2 and sf.info(clip).samplerate == CD_RATE
    codec = RecordingCodec(tiny_codec)
    prompt = encode_clip(clip, "  Two channels.  ", codec, None, "cpu")
    assert codec.encoded == [int(seconds * SAMPLE_RATE)]  # mono at 16 kHz
    assert abs(len(prompt.codes) - seconds * CODES_PER_SECOND) <= CODE_SLACK
    assert prompt.codes.dtype == np.int64 and prompt.text == "Two channels."


@pytest.mark.parametrize(("suffix", "codec_args"), [(".mp3", ["-c:a", "libmp3lame"]), (".m4a", ["-c:a", "aac"])])
def test_compressed_clip_via_ffmpeg(tmp_path: Path, tiny_codec, suffix: str, codec_args: list[str]) -> None:
    try:
        ffmpeg = find_ffmpeg()
    except ExportError:
        pytest.skip("no ffmpeg")
    seconds = 1.5
    source = write(tmp_path / "source.wav", speechlike(seconds, rate=CD_RATE), CD_RATE)
    clip = tmp_path / f"clip{suffix}"
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), *codec_args, "-b:a", "96k", str(clip)]
    if subprocess.run(cmd, capture_output=True, check=False).returncode != 0:
        pytest.skip(f"this ffmpeg cannot write {suffix}")
    prompt = encode_clip(clip, "Compressed words.", tiny_codec, None, "cpu")
    # Encoders add a few ms of priming; the clip is still about 50 codes a second.
    assert abs(len(prompt.codes) - seconds * CODES_PER_SECOND) <= 5


# --- resolve_voice: clip, stored name or nothing ------------------------------------------------


def test_resolve_voice_cases(tmp_path: Path, home: Path, tiny_codec) -> None:
    assert resolve_voice(None, None, tiny_codec, None, "cpu") is None
    with pytest.raises(VoiceError, match="--voice-text needs --voice"):
        resolve_voice(None, "Words.", tiny_codec, None, "cpu")
    missing = tmp_path / "narrator.wav"
    with pytest.raises(VoiceError) as info:
        resolve_voice(str(missing), None, tiny_codec, None, "cpu")
    assert str(missing) in str(info.value) and "not found" in str(info.value) and "llasa voice list" in str(info.value)
    with pytest.raises(VoiceError, match="unknown voice 'alice'.*llasa voice add"):
        resolve_voice("alice", None, tiny_codec, None, "cpu")
    codes = np.arange(100, dtype=np.int64)
    VoiceStore().add("alice", codes, "Alice speaking.")
    prompt = resolve_voice("alice", None, tiny_codec, None, "cpu")
    assert prompt is not None and np.array_equal(prompt.codes, codes) and prompt.text == "Alice speaking."
    with pytest.raises(VoiceError, match="applies to a clip"):
        resolve_voice("alice", "Other words.", tiny_codec, None, "cpu")
    clip = write(tmp_path / "clip.flac", speechlike(1.2))
    prompt = resolve_voice(str(clip), "A flac clip.", tiny_codec, None, "cpu")
    assert prompt is not None and abs(len(prompt.codes) - 1.2 * CODES_PER_SECOND) <= CODE_SLACK


# --- the voice commands, and synth with a stored voice --------------------------------------------


def _listed(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["voice", "list", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_voice_add_list_synth_remove(tmp_path: Path, home: Path, tiny_models, capsys) -> None:
    clip = write(tmp_path / "narrator.wav", speechlike(2.0))
    codec = str(tiny_models.xcodec2)
    add = ["voice", "add", "narrator", str(clip), "--text", "I am the narrator.", "--codec", codec, "--device", "cpu"]
    assert main(add) == 0
    assert "stored voice 'narrator'" in capsys.readouterr().out
    assert main(add) == 23  # exists: refused before any encoding
    assert "--force" in capsys.readouterr().err
    [row] = _listed(capsys)
    assert row["name"] == "narrator" and row["text"] == "I am the narrator."
    assert abs(row["seconds"] - 2.0) <= CODE_SLACK / CODES_PER_SECOND
    stored = VoiceStore().get("narrator")

    out = tmp_path / "out"
    synth = ["synth", "--text", "Hello there.", "-o", str(out), "--voice", "narrator", "-q", "--no-verify"]
    assert main([*synth, "--model", str(tiny_models.llasa), "--codec", codec, "--device", "cpu"]) == 0
    with JobStore.open(out / ".llasa") as store:
        used = store.load_voice()
    assert used is not None and np.array_equal(used.codes, stored.codes) and used.text == stored.text

    capsys.readouterr()
    assert main(["voice", "remove", "narrator"]) == 0
    assert _listed(capsys) == []
    assert main(["voice", "remove", "narrator"]) == 23
    assert "unknown voice 'narrator'" in capsys.readouterr().err
