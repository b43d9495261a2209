"""Tiny random models of the real architectures, for tests and offline demos.

Every model is built from a config (no download), saved with `save_pretrained` (safetensors),
and meant to be loaded back through the same loaders users run (`llasa_cli.engine.loading`). The
tokenizer mirrors the released Llasa tokenizer's structure: a byte-level BPE with the
Llama-3 chat tokens and template, the 8 Llasa markers and the 65,536 speech tokens added as
special tokens, so speech ids start elsewhere than the real 128,264 (code must look them up).

torch and transformers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..constants import CODEBOOK_SIZE, SAMPLE_RATE, SAMPLES_PER_CODE
from ..engine.prompt import SPEECH_END_TOKEN, speech_token

LLAMA3_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)
LLASA_MARKER_TOKENS = (
    "<|TEXT_GENERATION_START|>",
    "<|TEXT_GENERATION_END|>",
    "<|TEXT_UNDERSTANDING_START|>",
    "<|TEXT_UNDERSTANDING_END|>",
    "<|SPEECH_GENERATION_START|>",
    "<|SPEECH_GENERATION_END|>",
    "<|SPEECH_UNDERSTANDING_START|>",
    "<|SPEECH_UNDERSTANDING_END|>",
)

# A Llama-3.x-style template: BOS, a system header with dates (like Llama 3.2's, which calls
# strftime_now when no date_string is passed), then one header + content + <|eot_id|> per turn.
# `continue_final_message=True` works because the final turn's content is rendered verbatim.
LLAMA3_STYLE_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}"
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim }}{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

_BPE_CORPUS = (
    "Convert the text to speech: It was the best of times, it was the worst of times. "
    "Chapter one. The quick brown fox jumps over the lazy dog; 0 1 2 3 4 5 6 7 8 9. "
    'She said, "Hello, world!" and he asked: why? Numbers like 1984 and 3.14 are read aloud. '
    "\u4f60\u597d\uff0c\u4e16\u754c\u3002 "
)
_BPE_VOCAB_SIZE = 600
_SEED = 1234

# Tiny LM: Llama with 2 layers, 64 wide. A larger init spread than the default keeps logits
# apart, so that sampled tokens do not hinge on float rounding between batch shapes.
TINY_LM = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "initializer_range": 0.2,
    "tie_word_embeddings": True,
}
# quantization_dim must equal hidden_size + the semantic model's hidden size (the port checks it).
TINY_XCODEC2 = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "quantization_dim": 96,
    "encoder_hidden_size": 4,  # the acoustic encoder doubles it per stride: 4 * 2**5 = 128 channels at the end
    "semantic_model_config": {
        "model_type": "wav2vec2-bert",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "output_hidden_size": 32,
    },
}
TINY_WAVLM = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (32,) * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
    "tdnn_dim": (32, 32, 32, 32, 64),
    "xvector_output_dim": 32,
    "classifier_proj_size": 32,
}
# Whisper's audio context must stay 1500 (30 s windows of 3000 mel frames); the rest is tiny.
TINY_WHISPER = {
    "n_mels": 80,
    "n_audio_ctx": 1500,
    "n_audio_state": 32,
    "n_audio_head": 2,
    "n_audio_layer": 1,
    "n_vocab": 51864,
    "n_text_ctx": 448,
    "n_text_state": 32,
    "n_text_head": 2,
    "n_text_layer": 1,
}


@dataclass(frozen=True)
class TinyModels:
    """Where `build_tiny_models` wrote each model (whisper is None where openai-whisper is missing)."""

    root: Path
    llasa: Path
    xcodec2: Path
    wavlm: Path
    whisper: Path | None


def build_tiny_tokenizer():  # -> PreTrainedTokenizerFast (transformers is imported lazily)
    """A byte-level BPE tokenizer with the Llasa vocabulary structure, trained offline in ~0.1 s."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(LLAMA3_SPECIAL_TOKENS),
        show_progress=False,
    )
    backend.train_from_iterator([_BPE_CORPUS] * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_tokens(list(LLASA_MARKER_TOKENS), special_tokens=True)
    tokenizer.add_tokens([speech_token(code) for code in range(CODEBOOK_SIZE)], special_tokens=True)
    tokenizer.chat_template = LLAMA3_STYLE_CHAT_TEMPLATE
    return tokenizer


# The builders below take a shape and a device so that `scripts/bench_models.py` builds the
# real-size models with them too; the tiny shapes are the defaults.


def build_llama(
    out: Path,
    shape: dict = TINY_LM,
    vocab_size: int | None = None,
    device: str = "cpu",
    bfloat16: bool = False,
) -> None:
    """A random Llasa-style Llama (`shape` fields of LlamaConfig) and the tiny tokenizer, saved to `out`.
    `vocab_size` defaults to the tokenizer's; the real 1B model's is larger."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=vocab_size or len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids(SPEECH_END_TOKEN),
        **shape,
    )
    torch.manual_seed(_SEED)
    with torch.device(device):  # random init of a 1B model is much faster on a GPU
        model = LlamaForCausalLM(config).eval()
    if bfloat16:
        model = model.to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_xcodec2(out: Path, shape: dict | None = TINY_XCODEC2, device: str = "cpu") -> None:
    """A random X-Codec2 (`shape` fields of Xcodec2Config; None: the default, real size) and its extractor."""
    import torch
    from transformers import Xcodec2Config, Xcodec2Model

    # The extractor class is imported from its module: transformers exports a placeholder
    # where torchaudio is missing, but constructing and saving it needs no torchaudio.
    from transformers.models.xcodec2.feature_extraction_xcodec2 import Xcodec2FeatureExtractor

    torch.manual_seed(_SEED)
    with torch.device(device):
        Xcodec2Model(Xcodec2Config(**(shape or {}))).eval().save_pretrained(out)
    Xcodec2FeatureExtractor(sampling_rate=SAMPLE_RATE, hop_length=SAMPLES_PER_CODE).save_pretrained(out)


def build_wavlm(out: Path, shape: dict | None = TINY_WAVLM, device: str = "cpu") -> None:
    """A random WavLM x-vector model (None: WavLMConfig's defaults, the base size) and its extractor."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    torch.manual_seed(_SEED)
    with torch.device(device):
        WavLMForXVector(WavLMConfig(**(shape or {}))).eval().save_pretrained(out)
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    extractor.save_pretrained(out)


def build_whisper(out: Path, dims: dict = TINY_WHISPER, device: str = "cpu") -> bool:
    """A random openai-whisper model in the folder format `asr.load_transcriber` reads; False where
    openai-whisper is missing."""
    try:
        from whisper.model import ModelDimensions, Whisper
    except ImportError:
        return False
    import torch

    from ..verify.asr import save_whisper_folder

    torch.manual_seed(_SEED)
    with torch.device(device):
        model = Whisper(ModelDimensions(**dims)).eval()
    save_whisper_folder(model, out)
    return True


def build_tiny_models(root: Path) -> TinyModels:
    """Write tiny random Llasa, X-Codec2, WavLM x-vector and (if installed) Whisper models under `root`."""
    root = Path(root)
    paths = TinyModels(
        root=root,
        llasa=root / "llasa",
        xcodec2=root / "xcodec2",
        wavlm=root / "wavlm",
        whisper=root / "whisper",
    )
    build_llama(paths.llasa)
    build_xcodec2(paths.xcodec2)
    build_wavlm(paths.wavlm)
    if not build_whisper(paths.whisper):
        paths = TinyModels(root=root, llasa=paths.llasa, xcodec2=paths.xcodec2, wavlm=paths.wavlm, whisper=None)
    return paths
