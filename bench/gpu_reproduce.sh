#!/usr/bin/env bash
# The ablations at their full protocols (30 epochs of all 54,000 training images, batch 128, 3 seeds)
# on one GPU (JAX backend, bf16, no network), one script:
#   bench/gpu_reproduce.sh OUT_DIR [DATA_ROOT] [EXPERIMENT ...]    (SMOKE=1: quick modes on CPU, any machine)
# Each experiment runs in its own process with its own timeout and prints every trial as it goes
# (keras-tuner's trial lines, one line per epoch); its summary.md (claim, verdicts, machine,
# versions, wall time) and trials.csv land in OUT_DIR/<experiment>/.
# Sizing, from bench/reference/h200/ (ResNet-20 ~3.4 ms and ResNet-56 ~8 ms a step at batch 512 in
# bf16; a batch-128 step is dispatch-bound, taken here as ~3 and ~5 ms): plain_vs_residual is
# 12,660 steps a run x (2 x 3 ms + 2 x 5 ms) x 3 seeds = ~10 min with compiles, so it is the default;
# name others to run them (deep_vs_wide ~6 min; preact_vs_postact ~5 min; bottleneck_vs_basic,
# aux_heads and fractal_droppath are larger: estimate before spending device time).
set -uo pipefail
OUT=${1:?usage: bench/gpu_reproduce.sh OUT_DIR [DATA_ROOT] [EXPERIMENT ...]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
shift $(( $# >= 2 ? 2 : 1 ))
EXPERIMENTS=("$@")
[ ${#EXPERIMENTS[@]} -eq 0 ] && EXPERIMENTS=(plain_vs_residual)
mkdir -p "$OUT"
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
CACHE=${CACHE:-/tmp/lab_compile_cache}
LIMIT=${LIMIT:-590}  # seconds per experiment
ARGS=(data.root="$DATA" train.precision=mixed_bfloat16 train.compile_cache="$CACHE" train.verbose=1)
if [ "${SMOKE:-0}" = 1 ]; then
  ARGS=(quick=true data.root="$DATA" train.compile_cache="$CACHE" train.verbose=1)
fi
for name in "${EXPERIMENTS[@]}"; do
  echo "== $name"; date
  timeout "$LIMIT" python3 run.py experiment="$name" "${ARGS[@]}" search.directory="$OUT/tuner" \
    tracking.uri="sqlite:///$OUT/mlflow.db" hydra.run.dir="$OUT/hydra/$name" || echo "$name failed or timed out: $?"
  python3 - "$OUT" "$name" <<'PY'
import pathlib, sys
from mlflow.tracking import MlflowClient
out, name = sys.argv[1], sys.argv[2]
client = MlflowClient(f"sqlite:///{out}/mlflow.db")
experiment = client.get_experiment_by_name(name)
parents = client.search_runs([experiment.experiment_id], "tags.`lab.role` = 'parent'") if experiment else []
for parent in parents:
    folder = pathlib.Path(out, name)
    folder.mkdir(parents=True, exist_ok=True)
    for artifact in ("summary.md", "trials.csv", "error_curves.png"):
        try:
            source = client.download_artifacts(parent.info.run_id, artifact)
            (folder / artifact).write_bytes(pathlib.Path(source).read_bytes())
        except Exception as error:  # noqa: BLE001  (a sweep that timed out has no report)
            print(f"{name}: no {artifact} ({error})")
    print(f"{name}: {parent.info.status}, files in {folder}")
PY
done
date
