#!/usr/bin/env bash
# Every CUDA figure the benchmarks measure, in one command of under 5 minutes on one GPU:
#
#   tests/bench/gpu_check.sh [--json PATH] [--budget SECONDS] [--work DIR]
#   tests/bench/gpu_check.sh --cpu-smoke        # the same code at tiny sizes on the CPU
#
# Runs from the source tree (no install) on generated data with randomly initialised torchvision
# models; needs torch, torchvision, numpy and Pillow only. PYTHON picks the interpreter (default python3);
# GPU_CHECK_TIMEOUT (default 295 s) is a hard stop behind the Python module's own time budget.
# Without a CUDA device (and without --cpu-smoke) it says so and exits 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" - <<'PY'
import platform
import torch
import torchvision

print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
else:
    print("GPU: none visible to torch")
PY

run=("$PYTHON" -m tests.bench.gpu_check "$@")
if command -v timeout >/dev/null 2>&1; then
    exec timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-295}" "${run[@]}"
fi
exec "${run[@]}"
