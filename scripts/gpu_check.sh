#!/usr/bin/env bash
# The prepared checks for a lent GPU. First, here: `scripts/gpu_wheels.sh` (the packages that
# machine lacks, into .whl/). Then one device call per stage (each well under 10 minutes):
#   command: bash scripts/gpu_check.sh bench    carry: [".whl"]    timeout_s: 570
#   command: bash scripts/gpu_check.sh steps    carry: [".whl"]    timeout_s: 420   (if time is left)
# bench: installs the wheels, checks that the project imports, runs the gpu-marked tests, then
#   the Llasa-1B-shape benchmark (baseline, engine, --beam 1, --beam 5).
# steps: one decode step's time with DynamicCache, StaticCache and StaticCache + torch.compile
#   (CUDA graphs) at batch 1, 16 and 64: whether a static cache and compile pay.
# Results land in $OUT (the device tool's folder; ./gpu-results elsewhere).
set -uo pipefail
stage="${1:-bench}"
out="${OUT:-gpu-results}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="/tmp/site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 - > "$out/env.txt" 2>&1 <<'PY'
import torch, transformers
from transformers import Xcodec2Model  # noqa: F401  (the codec needs transformers >= 5.2x)
import llasa_cli.pipeline.run, llasa_cli.verify.composite, whisper  # noqa: F401
print("torch", torch.__version__, "transformers", transformers.__version__)
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
PY
status=$?
cat "$out/env.txt"
[ "$status" -eq 0 ] || { echo "imports failed: see env.txt"; exit 1; }
if [ "$stage" = steps ]; then
    timeout "${STEP_SECONDS:-380}" python3 scripts/bench_decode_step.py --size 1b --device cuda --batch-sizes 1,16,64 \
        --prompt-tokens 400 --steps 64 --json > "$out/decode-steps.json" 2> "$out/decode-steps.err"
    echo "decode steps: exit $?"; tail -5 "$out/decode-steps.err"
    exit 0
fi
timeout "${TEST_SECONDS:-120}" python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py tests/test_oom.py \
    > "$out/gpu-tests.txt" 2>&1
echo "gpu tests: exit $?"; tail -3 "$out/gpu-tests.txt"
# 16 segments of 3-8 s in one batch; the baseline's batch-1 `generate` takes most of the time
# (about 20 ms a token for a 1B model in eager mode), so beam search times the first 4 only.
timeout "${BENCH_SECONDS:-420}" python3 scripts/bench.py --size 1b --device cuda --segments 16 --batch-size 16 \
    --max-seconds 8 --beam-segments 4 --json > "$out/bench-1b.json" 2> "$out/bench-1b.err"
echo "bench: exit $?"; tail -5 "$out/bench-1b.err"
