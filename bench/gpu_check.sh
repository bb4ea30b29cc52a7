#!/usr/bin/env bash
# The GPU check of the lab (JAX backend, no TensorFlow, no network), one script:
#   bench/gpu_check.sh OUT_DIR [DATA_ROOT] [bench|fast|all]   (SMOKE=1: a few steps on synthetic data, any machine)
# 1. task=bench resnet20, bf16, batch 512: raw Keras and the lab, twice each, in ABBA order (the
#    first fit of each compiles with a cold cache, the second from the warm one).
# 2. task=bench resnet20 float32 (lab only).   3. task=bench resnet56 bf16, as 1.
# 4. (fast) experiment=fast_fashion: three seeds in one process (compile once, then from the cache).
# Every step has its own timeout and prints as it goes; JSON lands under OUT_DIR.
set -uo pipefail
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR [DATA_ROOT]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
PART=${3:-all}
mkdir -p "$OUT"
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
CACHE=${CACHE:-/tmp/lab_compile_cache}
TRACK=(tracking.uri="sqlite:///$OUT/mlflow.db" hydra.run.dir="$OUT/hydra")
DATA_ARGS=(data=fashion_mnist data.root="$DATA")
BENCH=(train.batch_size=512 bench.steps=300 bench.epochs=3 train.compile_cache="$CACHE" bench.out="$OUT")
FAST=()
if [ "${SMOKE:-0}" = 1 ]; then
  DATA_ARGS=(data=synthetic data.image_size=28 data.channels=1 data.train_size=2048)
  BENCH=(train.batch_size=32 bench.steps=2 bench.epochs=2 train.compile_cache="$CACHE" bench.out="$OUT")
  FAST=(quick=true)
fi
step() { echo "== $1"; date; shift; timeout "$@" || echo "step failed or timed out: $?"; }

if [ "$PART" != fast ]; then
step "bench resnet20 bf16: raw, lab, lab, raw (cold, then warm cache)" 150 python3 run.py task=bench model=resnet20 \
  "${DATA_ARGS[@]}" "${BENCH[@]}" train.precision=mixed_bfloat16 tracking.experiment=bench "${TRACK[@]}"
step "bench resnet20 float32, lab only" 60 python3 run.py task=bench model=resnet20 "${DATA_ARGS[@]}" "${BENCH[@]}" \
  train.precision=float32 bench.raw=false bench.repeats=1 tracking.experiment=bench "${TRACK[@]}"
step "bench resnet56 bf16: raw, lab, lab, raw" 180 python3 run.py task=bench model=resnet56 "${DATA_ARGS[@]}" \
  "${BENCH[@]}" train.precision=mixed_bfloat16 tracking.experiment=bench "${TRACK[@]}"
fi
[ "$PART" = bench ] && exit 0
step "fast_fashion, 3 seeds" 300 python3 run.py experiment=fast_fashion "${FAST[@]}" "${DATA_ARGS[@]}" \
  train.compile_cache="$CACHE" search.directory="$OUT/tuner" "${TRACK[@]}"
date
python3 - "$OUT" <<'PY'
import json, sys
from mlflow.tracking import MlflowClient
out = sys.argv[1]
client = MlflowClient(f"sqlite:///{out}/mlflow.db")
experiment = client.get_experiment_by_name("fast_fashion")
runs = client.search_runs([experiment.experiment_id], "tags.`lab.role` = 'trial'") if experiment else []
report = [{"seed": r.data.params.get("seed"), "status": r.info.status, "device": r.data.tags.get("lab.device"),
           "wall_seconds": (r.info.end_time - r.info.start_time) / 1000 if r.info.end_time else None,
           "test_accuracy": r.data.metrics.get("test_accuracy"), "compile_seconds": r.data.metrics.get("compile_seconds"),
           "epoch_seconds": [m.value for m in client.get_metric_history(r.info.run_id, "epoch_seconds")]}
          for r in runs]
json.dump(report, open(f"{out}/fast_fashion.json", "w"), indent=1)
print(json.dumps(report, indent=1)[:4000])
PY
