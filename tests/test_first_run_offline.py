"""The first run without a network: every missing model named at once, in seconds, nothing left behind;
and a run whose hub models are all in the cache never waits on the network.

The subprocess tests run the installed `llasa` with HF_HUB_OFFLINE unset, an empty Hugging Face and
Whisper cache, and the hub endpoint on a local port where nothing listens, so nothing can download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from llasa_cli.engine import hub
from llasa_cli.engine.hub import ModelNeed, require_available
from llasa_cli.errors import ModelNotFoundError

from .test_cli import installed_llasa

REPO = Path(__file__).resolve().parents[1]
QUICK_START_BOOK = REPO / "sample_texts" / "the_lighthouse.txt"
CLOSED_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there
FIRST_RUN_LIMIT_S = 10.0
RUN_TIMEOUT_S = 300
DEFAULT_HUB_MODELS = ("HKUSTAudio/Llasa-1B", "HKUSTAudio/xcodec2-hf", "microsoft/wavlm-base-plus-sv")
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(
        HF_HOME=str(tmp_path / "hf"),
        HF_ENDPOINT=CLOSED_ENDPOINT,
        XDG_CACHE_HOME=str(tmp_path / "cache"),  # Whisper's checkpoints
        LLASA_HOME=str(tmp_path / "home"),
        OMP_NUM_THREADS="1",
    )
    return env


def default_whisper() -> str:
    import torch

    return "turbo" if torch.cuda.is_available() else "base"


def test_the_quick_start_offline_names_every_missing_model_in_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [installed_llasa(), "synth", str(QUICK_START_BOOK), "-o", "lighthouse-audio"],
        cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == ModelNotFoundError.exit_code == 20, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llasa: error: "), result.stderr
    line = lines[0]
    for repo in DEFAULT_HUB_MODELS:
        assert f"`hf download {repo}`" in line
    assert f"Whisper ASR model '{default_whisper()}'" in line
    assert "huggingface-cli" not in line  # the installed huggingface-hub has only `hf`
    assert "partial" not in result.stderr and "Retrying" not in result.stderr
    assert elapsed < FIRST_RUN_LIMIT_S, f"took {elapsed:.1f} s"
    assert not (tmp_path / "lighthouse-audio").exists()


def cache_as_hub_repo(hf_home: Path, repo_id: str, folder: Path) -> None:
    """Put a local model folder into the Hugging Face cache as if `hf download repo_id` had fetched it."""
    entry = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(SNAPSHOT)
    shutil.copytree(folder, entry / "snapshots" / SNAPSHOT)


@pytest.mark.slow
def test_hub_models_in_the_cache_load_without_waiting_on_the_network(tmp_path: Path, tiny_models) -> None:
    """Optional files a model does not have (processor_config.json...) used to be asked of the hub
    five times each, with back-off, before the cached copy was used: minutes offline."""
    env = offline_env(tmp_path)
    cache_as_hub_repo(Path(env["HF_HOME"]), "tiny/llasa", tiny_models.llasa)
    cache_as_hub_repo(Path(env["HF_HOME"]), "tiny/xcodec2", tiny_models.xcodec2)
    result = subprocess.run(
        [installed_llasa(), "synth", "--text", "Hello there.", "-o", "out", "--model", "tiny/llasa",
         "--codec", "tiny/xcodec2", "--no-verify", "--device", "cpu", "--max-segment-seconds", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Retrying" not in result.stderr and "thrown while requesting" not in result.stderr
    assert list((tmp_path / "out").glob("*.wav"))


def test_a_missing_hub_model_offline_is_named_beside_a_cached_one(tmp_path: Path, tiny_models) -> None:
    env = offline_env(tmp_path)
    cache_as_hub_repo(Path(env["HF_HOME"]), "tiny/llasa", tiny_models.llasa)
    result = subprocess.run(
        [installed_llasa(), "synth", "--text", "Hello.", "-o", "out", "--model", "tiny/llasa", "--codec",
         "some-org/not-cached-codec", "--asr-model", str(tiny_models.whisper), "--device", "cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 20, result.stderr
    line = result.stderr.strip()
    assert "some-org/not-cached-codec" in line and "microsoft/wavlm-base-plus-sv" in line
    assert "tiny/llasa" not in line and "Whisper" not in line  # in the cache; a local folder
    assert not (tmp_path / "out").exists()


# --- require_available's rule, without a network either way ------------------------------------


def need(name: str, present: bool, hub_id: str | None = None) -> ModelNeed:
    return ModelNeed("model", name, present, f"fetch {name}", hub_id=hub_id)


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The repositories asked about, of a hub that never answers (offline mode off)."""
    asked: list[str] = []
    monkeypatch.setattr(hub, "_hub_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda repo: asked.append(repo) is not None)
    return asked


def test_nothing_missing_asks_nothing(probes: list[str]) -> None:
    require_available([need("a", True, "org/a"), need("b", True)])
    assert probes == []


def test_missing_models_and_no_hub_are_one_error_naming_each(probes: list[str]) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        require_available([need("a", True, "org/a"), need("b", False), need("c", False, "org/c")])
    message = str(caught.value)
    assert "'b'" in message and "'c'" in message and "'a'" not in message
    assert "`fetch b`" in message and "`fetch c`" in message
    assert probes == ["org/c"]  # asked once, about a missing hub model


def test_missing_models_download_when_the_hub_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(hub, "_hub_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda repo: asked.append(repo) is None)
    require_available([need("b", False), need("c", False, "org/c")])
    assert asked == ["org/c"]


def test_offline_mode_asks_no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "_hub_offline", lambda: True)
    monkeypatch.setattr(hub, "hub_reachable", lambda repo: pytest.fail("the hub was asked in offline mode"))
    with pytest.raises(ModelNotFoundError, match="'b'"):
        require_available([need("b", False, "org/b")])


def test_voice_add_and_verify_offline_name_their_missing_models_too(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    clip = tmp_path / "clip.wav"
    sf.write(str(clip), (0.3 * np.sin(np.arange(48_000) * 0.05)).astype(np.float32), 16_000)
    env = offline_env(tmp_path)
    commands = {
        "voice add": [installed_llasa(), "voice", "add", "narrator", str(clip), "--device", "cpu"],
        "verify": [installed_llasa(), "verify", str(clip), "--text", "Hi.", "--voice", str(clip), "--device", "cpu"],
    }
    expected = {
        "voice add": ("`hf download HKUSTAudio/xcodec2-hf`", "Whisper ASR model 'base'"),
        "verify": ("Whisper ASR model 'base'", "`hf download microsoft/wavlm-base-plus-sv`"),
    }
    for name, cmd in commands.items():
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert result.returncode == 20, (name, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("llasa: error: ")]
        assert len(errors) == 1 and all(part in errors[0] for part in expected[name]), (name, result.stderr)
        assert "Retrying" not in result.stderr
