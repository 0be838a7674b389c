#!/usr/bin/env bash
# Benchmark asf_jax's training step on one NVIDIA GPU (H100 or H200) against PyTorch's, in about
# 10 minutes.
#
#   scripts/gpu_benchmark.sh [--workers N] [--no_install] [--quick] [--dry_run]
#
# For bfloat16 and float32 at global batch 64 and 256 (one process each): asf_jax's jitted train
# step (clips/s, MFU = counted FLOPs / the GPU's dense peak, compile time, memory) and the same
# architecture in PyTorch (AMP bfloat16 / float32, cuDNN autotuned), their steps alternating on
# the same GPU; then end-to-end training, N grain workers feeding the bfloat16 step at batch 256.
# Results: gpu_benchmark.json and gpu_benchmark.md, plus each run's JSON and log, in $OUT (or
# ./gpu_benchmark_results when OUT is unset). A run that fails (out of memory: both frameworks
# share the GPU, and float32 at batch 256 needs ~90 GB together) is recorded and the rest go on.
#
#   --workers N    grain worker processes for the end-to-end run (default: CPU cores - 2)
#   --no_install   use the Python packages as they are (default: pip-install what is missing:
#                  this package's requirements, jax[cuda12] and torch, from PyPI)
#   --quick        tiny model and batch (benchmark --quick): a dry run that works on the CPU
#   --dry_run      print the benchmark commands instead of running them
#
# An operations script (it installs packages and drives a GPU machine), not library code: the
# benchmark it runs is the package's, `python -m asf_jax.benchmark`.
set -euo pipefail

workers=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
install=1
quick=()
dry_run=0
while (( $# )); do
    case "$1" in
        --workers) workers=${2:?--workers needs a number}; shift 2 ;;
        --no_install) install=0; shift ;;
        --quick) quick=(--quick); shift ;;
        --dry_run) dry_run=1; install=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu_benchmark_results}
python=${PYTHON:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# JAX and PyTorch share the GPU: JAX allocates as it goes instead of taking 75% up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

if (( install )); then
    if ! "$python" -c "import asf_jax.benchmark, torch, jax; assert jax.default_backend() == 'gpu'" \
            2>/dev/null; then
        "$python" -m pip install -q -e . "jax[cuda12]>=0.10.2,<0.11" torch
    fi
fi

# Dense peaks (TFLOP/s) of the GPU: bfloat16 tensor cores, and TF32, what float32 convolutions
# and matrix products run on by default in both XLA and cuDNN. PEAK_BF16 / PEAK_FP32 override.
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || true)
case "$gpu" in
    *H100*PCIe*) peaks=(756 378) ;;
    *H100*NVL*) peaks=(835 418) ;;
    *H100*|*H200*|*H800*) peaks=(989 495) ;;
    *) peaks=(0 0) ;;
esac
peak_bf16=${PEAK_BF16:-${peaks[0]}}
peak_fp32=${PEAK_FP32:-${peaks[1]}}

benchmark() {  # benchmark NAME ARGS...: one process, its JSON and log in $out
    local name=$1; shift
    local command=("$python" -m asf_jax.benchmark "$@" "${quick[@]}" --json "$out/run_$name.json")
    if (( dry_run )); then
        echo "${command[*]}"
        return
    fi
    echo "== $name (${SECONDS}s elapsed): ${command[*]}"
    timeout 300 "${command[@]}" 2>&1 | tee "$out/run_$name.log" \
        || echo "== $name failed (exit ${PIPESTATUS[0]}); see $out/run_$name.log"
}

mkdir -p "$out"
if (( ! dry_run )); then
    nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$out/nvidia-smi.txt"
fi
for dtype in bfloat16 float32; do
    peak=$peak_bf16
    [[ $dtype == float32 ]] && peak=$peak_fp32
    peak_flag=()
    (( peak > 0 )) && peak_flag=(--peak_tflops "$peak")
    for batch in 64 256; do
        benchmark "model_${dtype}_$batch" --only model --modes train --dtype "$dtype" \
            --batch_sizes "$batch" --repeats 10 --vs_torch "${peak_flag[@]}"
    done
done
benchmark end_to_end --only train --dtype bfloat16 --batch_sizes 256 --repeats 20 \
    --train_workers "$workers" --build_clips 32
(( dry_run )) && exit 0

"$python" - "$out" "$gpu" <<'EOF'
"""Collect the runs into gpu_benchmark.json and one markdown report, gpu_benchmark.md."""
import json
import sys
from pathlib import Path

from asf_jax.benchmark.report import report

out, gpu = Path(sys.argv[1]), sys.argv[2]
runs = {path.stem.removeprefix("run_"): json.loads(path.read_text())
        for path in sorted(out.glob("run_*.json"), key=lambda path: path.stat().st_mtime)}
logs = sorted(path.stem.removeprefix("run_") for path in out.glob("run_*.log"))
failed = [name for name in logs if name not in runs]
(out / "gpu_benchmark.json").write_text(json.dumps({"gpu": gpu, "runs": runs,
                                                    "failed": failed}, indent=1))
sections = [f"# asf_jax GPU benchmark: {gpu or 'no GPU'}"]
sections += [f"Run `{name}`:\n\n{report(result)}" for name, result in runs.items()]
sections += [f"Run `{name}` failed: see run_{name}.log" for name in failed]
(out / "gpu_benchmark.md").write_text("\n\n".join(sections) + "\n")
print("\n\n".join(sections))
EOF
echo "== done in ${SECONDS}s: $out/gpu_benchmark.json, $out/gpu_benchmark.md"
