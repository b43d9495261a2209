"""What differs on a CUDA GPU: bf16 weights, the sampler's device path, batch independence under
cuBLAS, overlap on a side stream. Marked `gpu`: CI (no GPU) skips them; `scripts/gpu_check.sh`
runs them on a lent GPU. Each check is a function of the device, so it can be tried on the CPU too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llasa_cli.engine.protocols import GenerationRequest
from llasa_cli.options import EngineOptions, SamplingOptions

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TEXTS = ["A first short line.", "A second line, a little longer than the first.", "Third.", "And a fourth one."]


def check_generation(models, device: str, dtype: str) -> None:
    """Codes in range, the seed decides them, and a row gets the same codes alone or in the batch."""
    from llasa_cli.engine.loading import load_generator

    generator = load_generator(EngineOptions(model=str(models.llasa), device=device, dtype=dtype), SamplingOptions())
    requests = [GenerationRequest(t, seed=i, max_new_tokens=40 + 10 * i) for i, t in enumerate(TEXTS)]
    batch = generator.generate(requests)
    for request, in_batch in zip(requests, batch, strict=True):
        assert ((in_batch.codes >= 0) & (in_batch.codes < 65_536)).all()
        alone = generator.generate([request])[0]
        assert np.array_equal(alone.codes, in_batch.codes), request.text
    again = generator.generate(requests)
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(batch, again, strict=True))


def check_sampler(device: str) -> None:
    """The sampler's draws follow the top-p distribution on the device, row by row."""
    from llasa_cli.engine.sampling import sample_next

    probs = torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04], device=device)
    draws = 4_000
    picks = sample_next(probs.log().expand(draws, -1), SamplingOptions(temperature=1.0, top_p=0.85), range(draws), 0)
    freq = torch.bincount(picks.cpu(), minlength=5).double() / draws
    assert freq[3:].sum() == 0
    assert torch.allclose(freq[:3], (probs[:3] / probs[:3].sum()).double().cpu(), atol=0.03)


def check_overlap_cli(models, tmp_path: Path, device: str) -> None:
    """A run with --overlap (the worker on its own stream) writes the audio a run without it writes."""
    import soundfile as sf

    from llasa_cli.cli.app import main

    book = tmp_path / "book.txt"
    book.write_text("\n\n".join(TEXTS) + "\n")
    outputs = {}
    for flag in ("--overlap", "--no-overlap"):
        out = tmp_path / flag.strip("-")
        args = [
            "synth", str(book), "-o", str(out), "--model", str(models.llasa), "--codec", str(models.xcodec2),
            "--device", device, "--no-verify", "--no-chapters", "--batch-size", "2", "--quiet", flag,
        ]  # fmt: skip
        assert main(args) == 0
        (wav,) = sorted(out.glob("*.wav"))
        outputs[flag] = sf.read(wav)[0]
    assert outputs["--overlap"].size > 0 and np.array_equal(outputs["--overlap"], outputs["--no-overlap"])


def check_beam_cli(models, tmp_path: Path, device: str) -> None:
    from llasa_cli.cli.app import main

    book = tmp_path / "beam.txt"
    book.write_text(TEXTS[1] + "\n")
    args = [
        "synth", str(book), "-o", str(tmp_path / "beam"), "--model", str(models.llasa), "--codec",
        str(models.xcodec2), "--device", device, "--no-verify", "--no-chapters", "--beam", "2", "--quiet",
    ]  # fmt: skip
    assert main(args) == 0


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_generation_on_cuda(tiny_models, dtype: str) -> None:
    check_generation(tiny_models, "cuda", dtype)


@pytest.mark.gpu
@needs_cuda
def test_sampler_on_cuda() -> None:
    check_sampler("cuda")


@pytest.mark.gpu
@needs_cuda
def test_overlap_on_cuda(tiny_models, tmp_path: Path) -> None:
    check_overlap_cli(tiny_models, tmp_path, "cuda")


@pytest.mark.gpu
@needs_cuda
def test_beam_search_on_cuda(tiny_models, tmp_path: Path) -> None:
    check_beam_cli(tiny_models, tmp_path, "cuda")
