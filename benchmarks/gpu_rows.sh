#!/usr/bin/env bash
# The GPU rows of issues 9, 10 and 11 in one run, sized for the lent GPU machine's 15 minutes (each row has its own
# time limit of 150 s, so the run stays within the 600 s a call may take). Random weights: same compute as trained ones.
#
#   policy_0.5b.json    issue 10: policy step latency p50 / p99 of a 0.5B-class VLA (SigLIP-B/16 + Qwen2-0.5B-shaped
#                       Llama, bf16), executed actions/s with chunking (benchmarks/bench_policy.py)
#   finetune_0.5b.json  issue 10: stage-2 finetuning steps/s of that VLA, whole backbone + decoder, batch 32, bf16
#                       autocast as `finetune-vla` trains on a GPU (benchmarks/bench_finetune_step.py --synthetic)
#   lam_dinov2.json     issue 11: the study's LAM at the paper's feature scale (frozen DINOv2-Base, UniVLA-sized
#                       LAM, MVP objective): training steps/s for 2 and 3 views, online latency p50 / p99 at batch 1
#                       for 2 and 3 views (benchmarks/bench_lam.py --dinov2-base)
#   pipeline_gpu.json   issue 9: camera -> latent actions -> policy -> safety -> command latency with both models, 3
#                       cameras, in one process (benchmarks/bench_pipeline.py). The ROS 2 wheels (about 250 MB)
#                       cannot travel to that machine (64 MiB per call), so the DDS hop is not in this row; docs/ros.md
#                       has its cost measured over real DDS on the CPU.
#
# On the device (the tool's `run`, from the repository root; fetch the wheels and GL loaders first, here, with
# `bash benchmarks/gpu_rows_fetch.sh`):
#   run(command="bash benchmarks/gpu_rows.sh", carry=[".whl", ".gl"], timeout_s=600)    -> $OUT/*.json, $OUT/gpu_rows.log
# Here, to check the plumbing end to end on the CPU with tiny stand-ins (the numbers mean nothing):
#   SMOKE=1 OUT=/tmp/gpu_rows_smoke bash benchmarks/gpu_rows.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_rows}
SMOKE=${SMOKE:-0}
mkdir -p "$OUT"
LOG="$OUT/gpu_rows.log"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 MUJOCO_GL=egl
if [ "$SMOKE" = 1 ]; then
  PY=${PY:-.venv/bin/python}
  DEV=cpu VLA=tiny LAM=dinov2-smoke ITERS=5 BLOCKS=1 STEPS=2 TRAIN=2 PIPE=4 LIMIT=300 THREADS=1
  export OMP_NUM_THREADS=1
else
  PY=${PY:-python3}
  # THREADS=0: torch's default CPU threads for the batch preparation, as `finetune-vla` runs on a GPU machine
  DEV=cuda VLA=random-0.5b LAM=dinov2-base ITERS=200 BLOCKS=3 STEPS=10 TRAIN=20 PIPE=60 LIMIT=150 THREADS=0
  # the image's GL loaders are missing: unpack the carried ones (root, a bare machine given back afterwards)
  if compgen -G ".gl/*.deb" >/dev/null; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
  if compgen -G ".whl/*.whl" >/dev/null; then  # our pinned versions first on the path, over the image's
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { echo "installing the carried wheels failed" | tee -a "$LOG"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
T0=$(date +%s)
say() { echo "[+$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
FAILED=()
row() {  # row NAME COMMAND...: run one benchmark under its time limit; a failure is logged and the next row runs
  local name=$1; shift
  say "$name: $*"
  timeout "$LIMIT" "$@" >>"$LOG" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then FAILED+=("$name (exit $rc$([ $rc -eq 124 ] && echo ", over ${LIMIT} s"))"); fi
  say "$name: exit $rc"
}

say "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo no GPU)"
"$PY" - >>"$LOG" 2>&1 <<'EOF'
import torch, transformers, peft, accelerate
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__,
      "peft", peft.__version__, "accelerate", accelerate.__version__)
EOF
row policy "$PY" benchmarks/bench_policy.py --backbone "$VLA" --device "$DEV" --cameras third_person,wrist \
    --iters "$ITERS" --json "$OUT/policy_0.5b.json"
row finetune "$PY" benchmarks/bench_finetune_step.py --synthetic --backbone "$VLA" --device "$DEV" \
    --mixed-precision bf16 --blocks "$BLOCKS" --steps "$STEPS" --variants mask --threads "$THREADS" \
    --json "$OUT/finetune_0.5b.json"
row lam "$PY" benchmarks/bench_lam.py --device "$DEV" --dinov2-base $([ "$SMOKE" = 1 ] && echo --smoke) \
    --train-steps "$TRAIN" --iters "$ITERS" --json "$OUT/lam_dinov2.json"
row pipeline "$PY" benchmarks/bench_pipeline.py --vla-backbone "$VLA" --lam-backbone "$LAM" --device "$DEV" \
    --steps "$PIPE" --out "$OUT/pipeline_gpu.json"
say "done; failed rows: ${FAILED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ]
