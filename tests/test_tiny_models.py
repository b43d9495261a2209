"""The tiny models exist, are tiny, have the real architectures and load with the real loaders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llasa_cli.constants import CODEBOOK_SIZE
from llasa_cli.engine.prompt import SPEECH_END_TOKEN, SPEECH_START_TOKEN, speech_token
from llasa_cli.testing.tiny_models import LLASA_MARKER_TOKENS
from llasa_cli.verify.asr import WHISPER_DIMS_FILE, WHISPER_WEIGHTS_FILE

REAL_SPEECH_OFFSET = 128_264  # the released tokenizer's first speech id: the tiny one must differ


def test_folders_hold_saved_models(tiny_models) -> None:
    for folder in (tiny_models.llasa, tiny_models.xcodec2, tiny_models.wavlm):
        assert (folder / "config.json").is_file()
        assert list(folder.glob("*.safetensors"))
        assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    assert (tiny_models.xcodec2 / "preprocessor_config.json").is_file()
    assert (tiny_models.wavlm / "preprocessor_config.json").is_file()
    total = sum(f.stat().st_size for f in Path(tiny_models.root).rglob("*") if f.is_file())
    assert total < 60_000_000


def test_tokenizer_has_llasa_vocabulary_at_other_ids(tiny_generator) -> None:
    tokenizer = tiny_generator.tokenizer
    ids = tokenizer.convert_tokens_to_ids([speech_token(0), speech_token(CODEBOOK_SIZE - 1)])
    assert ids[0] != REAL_SPEECH_OFFSET and ids[1] - ids[0] == CODEBOOK_SIZE - 1
    for marker in LLASA_MARKER_TOKENS:
        assert tokenizer.convert_tokens_to_ids(marker) != tokenizer.unk_token_id
    assert tokenizer.tokenize(f"{SPEECH_START_TOKEN}{speech_token(7)}{SPEECH_END_TOKEN}") == [
        SPEECH_START_TOKEN,
        speech_token(7),
        SPEECH_END_TOKEN,
    ]
    assert tiny_generator.model.config.vocab_size == len(tokenizer)


def test_lm_is_a_llama(tiny_generator) -> None:
    assert type(tiny_generator.model).__name__ == "LlamaForCausalLM"
    assert tiny_generator.model.config.num_hidden_layers == 2


def test_wavlm_loads_with_its_feature_extractor(tiny_models) -> None:
    import numpy as np
    import torch
    from transformers import AutoFeatureExtractor, WavLMForXVector

    model = WavLMForXVector.from_pretrained(tiny_models.wavlm, local_files_only=True).eval()
    extractor = AutoFeatureExtractor.from_pretrained(tiny_models.wavlm, local_files_only=True)
    inputs = extractor([np.zeros(16_000, dtype=np.float32)], sampling_rate=16_000, return_tensors="pt")
    with torch.inference_mode():
        embeddings = model(**inputs).embeddings
    assert embeddings.shape == (1, model.config.xvector_output_dim)


def test_whisper_loads_from_safetensors(tiny_models) -> None:
    whisper_model = pytest.importorskip("whisper.model")
    from safetensors.torch import load_file

    assert tiny_models.whisper is not None
    dims = json.loads((tiny_models.whisper / WHISPER_DIMS_FILE).read_text())
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims))
    model.load_state_dict(load_file(tiny_models.whisper / WHISPER_WEIGHTS_FILE))
    assert model.dims.n_mels == 80


def test_script_is_a_thin_wrapper(tmp_path, monkeypatch, capsys) -> None:
    from llasa_cli.testing import tiny_models as module
    calls: list[Path] = []

    def fake_build(root: Path) -> module.TinyModels:
        calls.append(root)
        return module.TinyModels(root, root / "llasa", root / "xcodec2", root / "wavlm", None)

    monkeypatch.setattr(module, "build_tiny_models", fake_build)
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_tiny_models.py"
    spec = importlib.util.spec_from_file_location("make_tiny_models", script)
    assert spec is not None and spec.loader is not None
    wrapper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrapper)
    assert wrapper.main([str(tmp_path)]) == 0
    assert calls == [tmp_path]
    assert "whisper: skipped" in capsys.readouterr().out
