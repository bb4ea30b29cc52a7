#!/usr/bin/env bash
# The GPU check of the lab (JAX backend, no TensorFlow, no network), one script:
#   bench/gpu_check.sh OUT_DIR [DATA_ROOT]
# 1. bench/augment.py: the lab's pad-crop-flip vs Keras RandomTranslation+RandomFlip, batch 512.
# 2. `run.py` training: ResNet-20, all of Fashion-MNIST, bf16, batch 512, augmentation on, 10 epochs.
# Writes JSON under OUT_DIR and prints progress as it goes.
set -uo pipefail
OUT=${1:?usage: bench/gpu_check.sh OUT_DIR [DATA_ROOT]}
DATA=${2:-/usr/share/datasets/fashion-mnist}
mkdir -p "$OUT"
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
echo "== augment benchmark"; date
timeout 120 python3 bench/augment.py --out "$OUT" || echo "augment benchmark failed: $?"
echo "== train resnet20"; date
timeout 300 python3 run.py model=resnet20 data=fashion_mnist data.root="$DATA" train.epochs=10 \
  train.batch_size=512 train.lr=0.4 train.schedule=one_cycle train.label_smoothing=0.1 \
  train.precision=mixed_bfloat16 train.augment.pad=2 train.augment.flip=true \
  tracking.uri="sqlite:///$OUT/mlflow.db" tracking.experiment=gpu_check hydra.run.dir="$OUT/hydra" \
  || echo "training failed: $?"
date
python3 - "$OUT" <<'PY'
import json, sys
from mlflow.tracking import MlflowClient
out = sys.argv[1]
client = MlflowClient(f"sqlite:///{out}/mlflow.db")
experiment = client.get_experiment_by_name("gpu_check")
runs = client.search_runs([experiment.experiment_id]) if experiment else []
report = [{"status": r.info.status, "tags": {k: v for k, v in r.data.tags.items() if k.startswith("lab.")},
           "metrics": r.data.metrics,
           "images_per_second": [m.value for m in client.get_metric_history(r.info.run_id, "images_per_second")],
           "epoch_seconds": [m.value for m in client.get_metric_history(r.info.run_id, "epoch_seconds")]}
          for r in runs]
json.dump(report, open(f"{out}/train.json", "w"), indent=2)
print(json.dumps(report, indent=1)[:3000])
PY
