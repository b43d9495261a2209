"""Shared fixtures. Tests never reach a model hub: HF_HUB_OFFLINE is set before anything imports
huggingface_hub, so a hub id fails at once instead of after network timeouts."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pytest -n 2 runs two workers on two cores: more threads per worker only fight each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """Tiny random Llasa / X-Codec2 / WavLM / Whisper models, built once per test session (~6 s)."""
    from llasa_cli.testing.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_generator(tiny_models):
    """The tiny Llasa LM loaded through the user's loader, on the CPU, with the default sampling."""
    from llasa_cli.engine.loading import load_generator
    from llasa_cli.options import EngineOptions, SamplingOptions

    return load_generator(EngineOptions(model=str(tiny_models.llasa), device="cpu"), SamplingOptions())


@pytest.fixture(scope="session")
def tiny_codec(tiny_models):
    """The tiny X-Codec2 loaded through the user's loader, on the CPU."""
    from llasa_cli.engine.loading import load_codec

    return load_codec(str(tiny_models.xcodec2), "cpu")


@pytest.fixture
def one_torch_thread():
    """Tiny models on shared cores: one thread avoids oversubscription stalls (seconds per test)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
