#!/usr/bin/env bash
# `make gpu-check`: on the demo dataset, one epoch of training and a full prediction on CUDA with
# AMP, printing images/s for each; then the same under `torchrun --nproc_per_node=1`.
# One command for a session that has a GPU. The CPU-equivalent path (used by the tests):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_AMP=0 GPU_CHECK_N_IMAGES=40 GPU_CHECK_SIZE=64 bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SIZE=${GPU_CHECK_SIZE:-224}
BATCH=${GPU_CHECK_BATCH:-128}
WORKERS=${GPU_CHECK_WORKERS:-8}
N_IMAGES=${GPU_CHECK_N_IMAGES:-3000}
AMP=()
[ "${GPU_CHECK_AMP:-1}" = 1 ] && AMP=(--amp)
export TRAPLENS_HOME=${TRAPLENS_HOME:-$PWD/workspace}

if [ "$DEVICE" = cuda ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: CUDA is not available')"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
fi
eval "$("$PY" -m scripts.demo --dataset-only --n-images "$N_IMAGES")"  # DATASET=(...) IMAGES=...
OUT="$TRAPLENS_HOME/gpu-check"
rm -rf "$OUT" && mkdir -p "$OUT"

rate() {  # rate FILE KIND -> images/s recorded by the run
  "$PY" - "$1" "$2" <<'PY'
import csv, json, sys
path, kind = sys.argv[1], sys.argv[2]
if kind == "train":
    print(list(csv.DictReader(open(path)))[-1]["images_per_s"])
else:
    print(json.load(open(path))["prediction"]["images_per_s"])
PY
}

for mode in single torchrun; do
  if [ "$mode" = single ]; then LAUNCH=("$PY"); else
    LAUNCH=("$PY" -m torch.distributed.run --standalone --nproc_per_node=1); fi
  run="$OUT/$mode"
  "${LAUNCH[@]}" -m training.train --dataset "${DATASET[@]}" --images "$IMAGES" --out "$run/train" \
    --device "$DEVICE" "${AMP[@]}" --epochs-frozen 0 --epochs 1 --image-size "$SIZE" \
    --batch-size "$BATCH" --workers "$WORKERS" --predict-split val >"$run.train.log" 2>&1 \
    || { tail -20 "$run.train.log"; exit 1; }
  "${LAUNCH[@]}" -m training.predict --checkpoint "$run/train/checkpoint_best.pt" \
    --dataset "${DATASET[@]}" --images "$IMAGES" --out "$run/predict" --split all \
    --device "$DEVICE" "${AMP[@]}" --batch-size "$BATCH" --workers "$WORKERS" \
    >"$run.predict.log" 2>&1 || { tail -20 "$run.predict.log"; exit 1; }
  echo "gpu-check $mode ($DEVICE, amp=${GPU_CHECK_AMP:-1}, ${SIZE}px): train $(rate "$run/train/history.csv" train) images/s, predict $(rate "$run/predict/manifest.json" predict) images/s"
done
