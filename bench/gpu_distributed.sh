#!/usr/bin/env bash
# Distributed sweeps on one GPU machine (JAX backend), one script:
#   bench/gpu_distributed.sh OUT_DIR [DATA_ROOT]     (SMOKE=1: synthetic data, CPU, any machine)
# The same 4-trial sweep (ResNet-20, bf16, batch 512, 3 epochs of Fashion-MNIST, a grid over 4
# seeds) three ways, after one training that warms the compilation cache:
#   single: one process (search.distributed.role=none)
#   w1:     the launcher, a chief + 1 worker pinned to GPU 0
#   w2:     the launcher, a chief + 2 workers sharing GPU 0 (each gets 45% of its memory)
# nvidia-smi samples which processes hold GPU memory (the chief must not). JSON under OUT_DIR.
set -uo pipefail
OUT=${1:?usage: bench/gpu_distributed.sh OUT_DIR [DATA_ROOT]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
mkdir -p "$OUT"
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
CACHE=${CACHE:-/tmp/lab_compile_cache}
COMMON=(model=resnet20 data=fashion_mnist data.root="$DATA" train.epochs=3 train.batch_size=512
        train.precision=mixed_bfloat16 train.verbose=0 train.compile_cache="$CACHE"
        tracking.uri="sqlite:///$OUT/mlflow.db" tracking.experiment=distributed)
if [ "${SMOKE:-0}" = 1 ]; then
  DEVICES="[]"
  COMMON=(model=resnet20 data=synthetic data.train_size=512 train.epochs=2 train.batch_size=64
          train.jit_compile=false train.verbose=0 train.compile_cache="$CACHE"
          tracking.uri="sqlite:///$OUT/mlflow.db" tracking.experiment=distributed)
fi
GRID=(task=search search.tuner=grid search.max_trials=4 search.objective=test_accuracy
      'search.space=[{name: seed, path: seed, kind: choice, values: [0, 1, 2, 3]}]')
step() { echo "== $1"; date; shift; timeout "$@" || echo "step failed or timed out: $?"; }
DEVICES="[0]"

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-compute-apps=timestamp,pid,used_memory --format=csv,noheader -lms 500 > "$OUT/gpu_apps.csv" &
  SAMPLER=$!
fi
step "warm the compilation cache" 90 python3 run.py task=train "${COMMON[@]}" train.epochs=1 \
  hydra.run.dir="$OUT/hydra/warm"
for mode in single w1 w2; do
  case $mode in
    single) ROLE=(search.distributed.role=none) ;;
    w1) ROLE=(search.distributed.role=launcher "search.distributed.devices=$DEVICES" search.distributed.local_workers=1) ;;
    w2) ROLE=(search.distributed.role=launcher "search.distributed.devices=$DEVICES" search.distributed.local_workers=2) ;;
  esac
  echo "$mode start $(date +%s.%N)" >> "$OUT/phases.txt"
  step "sweep $mode" 150 python3 run.py "${COMMON[@]}" "${GRID[@]}" search.name="$mode" \
    search.directory="$OUT/tuner" search.distributed.address=127.0.0.1:8470 "${ROLE[@]}" \
    hydra.run.dir="$OUT/hydra/$mode" 2>&1 | tail -n 25
  echo "$mode end $(date +%s.%N)" >> "$OUT/phases.txt"
done
[ -n "${SAMPLER:-}" ] && kill "$SAMPLER"
python3 - "$OUT" <<'PY'
import json, sys
from datetime import datetime
from mlflow.tracking import MlflowClient
out = sys.argv[1]
client = MlflowClient(f"sqlite:///{out}/mlflow.db")
experiment = client.get_experiment_by_name("distributed")
phases = {}
for line in open(f"{out}/phases.txt"):
    mode, what, stamp = line.split()
    phases.setdefault(mode, {})[what] = float(stamp)
gpu = []
try:
    for line in open(f"{out}/gpu_apps.csv"):
        stamp, pid, memory = [part.strip() for part in line.split(",")]
        gpu.append((datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp(), pid, memory))
except FileNotFoundError:
    pass
report = {}
for mode, times in phases.items():
    runs = client.search_runs([experiment.experiment_id])
    parent = next((r for r in runs if r.data.tags.get("lab.role") == "parent" and r.info.run_name == mode), None)
    children = [r for r in runs if parent and r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    worker_pids = sorted({c.data.tags.get("lab.pid") for c in children})
    on_gpu = sorted({pid for stamp, pid, _ in gpu if times["start"] <= stamp <= times.get("end", 1e18)})
    report[mode] = {
        "wall_seconds": times.get("end", 0) - times["start"], "parent_status": parent and parent.info.status,
        "parent_device": parent and parent.data.tags.get("lab.device"),
        "gpu_pids": on_gpu, "worker_pids": worker_pids,
        "trials": [{"trial": c.data.tags.get("lab.trial"), "tuner": c.data.tags.get("lab.tuner"),
                    "device": c.data.tags.get("lab.device"), "pid": c.data.tags.get("lab.pid"), "status": c.info.status,
                    "wall_seconds": (c.info.end_time - c.info.start_time) / 1000 if c.info.end_time else None,
                    "test_accuracy": c.data.metrics.get("test_accuracy"),
                    "compile_seconds": c.data.metrics.get("compile_seconds"),
                    "images_per_second": [m.value for m in client.get_metric_history(c.info.run_id, "images_per_second")]}
                   for c in sorted(children, key=lambda c: c.data.tags.get("lab.trial", ""))]}
json.dump(report, open(f"{out}/distributed.json", "w"), indent=1)
for mode, r in report.items():
    print(mode, f"wall {r['wall_seconds']:.1f} s", r["parent_status"], "parent on", r["parent_device"],
          "gpu pids", r["gpu_pids"], "worker pids", r["worker_pids"])
    for t in r["trials"]:
        print("  ", t["trial"], t["tuner"], t["device"], t["status"], t["wall_seconds"], t["test_accuracy"],
              [round(x) for x in t["images_per_second"]])
PY
