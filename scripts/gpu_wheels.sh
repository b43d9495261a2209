#!/usr/bin/env bash
# Wheels for the lent GPU machine (see BENCHMARKS.md, "GPU"), which has PyTorch, transformers,
# typer, rich, numpy, safetensors, pyyaml, lxml, tiktoken and numba but cannot download: this
# fetches (or builds, for source-only packages) the rest for its Python 3.12 into .whl/, which a
# device call carries (`carry: [".whl"]`). Run it here, in the repository root.
set -euo pipefail
dest=.whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p "$dest"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
binary=(pysbd num2words soundfile soxr pydub pyloudnorm platformdirs markdown-it-py mdurl more-itertools
        "transformers==5.24.0")
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dest" "${binary[@]}"
# Published as source only (pure Python): build them here into wheels that install anywhere.
python3 -m pip wheel --no-deps -w "$dest" docopt future "openai-whisper>=20240930"
du -sh "$dest"
