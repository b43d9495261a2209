"""Model and device errors through `llasa synth`: the documented exit code and one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from llasa_cli.cli.app import main
from llasa_cli.errors import DeviceUnavailableError, ModelLoadError, ModelNotFoundError

NOT_CACHED_ID = "some-org/not-cached-model"


@pytest.fixture
def book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLASA_HOME", str(tmp_path / "home"))
    path = tmp_path / "book.txt"
    path.write_text("Hello there. This is a short line.\n")
    return path


def synth(book: Path, *options: str) -> list[str]:
    """`synth` without the verifiers, whose default models (not in the tests' caches) would be
    reported missing first: these tests are about the language model and the codec."""
    return ["synth", str(book), "-o", str(book.parent / "out"), "--device", "cpu", "--no-verify", *options]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a failed command writes to stderr (besides nothing at all)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("llasa: error: ")
    return lines[0]


def test_missing_model_path(book: Path, tiny_models, capsys) -> None:
    code = main(synth(book, "--model", "/does/not/exist", "--codec", str(tiny_models.xcodec2)))
    assert code == ModelNotFoundError.exit_code == 20
    assert "/does/not/exist" in one_error_line(capsys)


def test_hub_id_not_cached_offline_says_how_to_get_it(book: Path, tiny_models, capsys) -> None:
    code = main(synth(book, "--model", NOT_CACHED_ID, "--codec", str(tiny_models.xcodec2)))
    assert code == 20
    line = one_error_line(capsys)
    assert NOT_CACHED_ID in line
    assert f"hf download {NOT_CACHED_ID}" in line  # download ahead of time...
    assert "local folders" in line  # ...or point to a local copy


def test_folder_that_is_not_a_model(book: Path, tiny_models, capsys) -> None:
    folder = book.parent / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing to see")
    code = main(synth(book, "--model", str(folder), "--codec", str(tiny_models.xcodec2)))
    assert code == ModelLoadError.exit_code == 21
    assert str(folder) in one_error_line(capsys)


def test_folder_that_is_not_a_model_says_what_is_missing(book: Path, tiny_models, capsys) -> None:
    folder = book.parent / "not-a-model"
    folder.mkdir()
    main(synth(book, "--model", str(folder), "--codec", str(tiny_models.xcodec2)))
    assert "config.json" in one_error_line(capsys)


def test_a_file_given_as_the_model(book: Path, tiny_models, capsys) -> None:
    code = main(synth(book, "--model", str(book), "--codec", str(tiny_models.xcodec2)))
    assert code == 21
    line = one_error_line(capsys)
    assert str(book) in line and "not a model folder" in line


def test_codec_folder_given_as_the_model(book: Path, tiny_models, capsys) -> None:
    assert main(synth(book, "--model", str(tiny_models.xcodec2), "--codec", str(tiny_models.xcodec2))) == 21
    assert str(tiny_models.xcodec2) in one_error_line(capsys)


def test_missing_codec(book: Path, tiny_models, capsys) -> None:
    assert main(synth(book, "--model", str(tiny_models.llasa), "--codec", "/does/not/codec")) == 20
    assert "/does/not/codec" in one_error_line(capsys)


# `llasa voice add` loads the codec alone: the quick way to reach the codec's own checks.


def voice_add(book: Path, codec: str) -> list[str]:
    return ["voice", "add", "narrator", str(book), "--text", "Hello.", "--codec", codec, "--device", "cpu"]


def test_codec_id_not_cached_offline(book: Path, capsys) -> None:
    assert main(voice_add(book, "some-org/not-cached-codec")) == 20
    line = one_error_line(capsys)
    assert "hf download some-org/not-cached-codec" in line and "local folder" in line


def test_model_folder_given_as_the_codec(book: Path, tiny_models, capsys) -> None:
    assert main(voice_add(book, str(tiny_models.llasa))) == 21
    line = one_error_line(capsys)
    assert str(tiny_models.llasa) in line and "not an X-Codec2 codec" in line


def test_cuda_on_a_machine_without_one(book: Path, tiny_models, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    args = synth(book, "--model", str(tiny_models.llasa), "--codec", str(tiny_models.xcodec2))
    args[args.index("--device") + 1] = "cuda"
    assert main(args) == DeviceUnavailableError.exit_code == 22
    line = one_error_line(capsys)
    assert "--device cuda" in line and "no CUDA GPU" in line


# --- --speaker-backend ecapa: speechbrain's hyperparams.yaml can build any Python object ---------


def clip(folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    path = folder / "clip.wav"
    sf.write(str(path), (0.3 * np.sin(np.arange(32_000) * 0.1)).astype(np.float32), 16_000)
    return path


def verify_with_ecapa(audio: Path, model: str) -> list[str]:
    return ["verify", str(audio), "--text", "Hello.", "--voice", str(audio), "--no-asr-check",
            "--speaker-backend", "ecapa", "--speaker-model", model, "--device", "cpu"]  # fmt: skip


def test_ecapa_refuses_an_unknown_hub_id_before_loading_anything(book: Path, capsys) -> None:
    assert main(verify_with_ecapa(clip(book.parent), "some-org/spkrec-anything")) == 2
    line = one_error_line(capsys)
    assert "some-org/spkrec-anything" in line and "speechbrain/spkrec-ecapa-voxceleb" in line
    assert "local folder" in line and "hyperparams.yaml" in line


def test_ecapa_folder_without_hyperparams_is_not_a_model(book: Path, capsys) -> None:
    folder = book.parent / "ecapa"
    folder.mkdir()
    assert main(verify_with_ecapa(clip(book.parent), str(folder))) == ModelLoadError.exit_code
    assert "hyperparams.yaml" in one_error_line(capsys)


def test_ecapa_accepts_the_known_id_and_a_local_folder(tmp_path: Path) -> None:
    from llasa_cli.verify.speaker import DEFAULT_ECAPA_MODEL, ecapa_source

    assert ecapa_source(DEFAULT_ECAPA_MODEL) == DEFAULT_ECAPA_MODEL
    (tmp_path / "hyperparams.yaml").write_text("# the user's own, read by them\n")
    assert ecapa_source(str(tmp_path)) == str(tmp_path.resolve())
