"""Benchmark: what keeping a run's model costs (issue 14): the time to save and log it to MLflow
as a share of the run's wall time, and its size on disk.

    python bench/model_logging.py [--model resnet20] [--limit 5000] [--epochs 3] [--out results/cpu]

Trains `task=train` on Fashion-MNIST with `train.checkpoint=best` into a fresh SQLite store and
reads the run's own records: `model_log_seconds` (building the inference model, saving it in
MLflow's Keras flavour, uploading it), `model_bytes`, and the run's wall time (start to end).
Prints them and writes JSON with the machine, backend, versions and command.
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow.tracking import MlflowClient  # noqa: E402

from lab import runtime  # noqa: E402
from lab.config import register_configs, run_config  # noqa: E402
from lab.training.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results" / "cpu"))
    args = parser.parse_args()
    register_configs()
    with tempfile.TemporaryDirectory() as folder:
        cfg = run_config(
            [
                "data=fashion_mnist",
                f"data.limit={args.limit}",
                f"model={args.model}",
                f"train.epochs={args.epochs}",
                "train.checkpoint=best",
                "train.verbose=0",
                "train.jit_compile=false",
                f"tracking.uri=sqlite:///{folder}/mlflow.db",
            ]
        )
        result = train(cfg)
        run = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    wall = (run.info.end_time - run.info.start_time) / 1000
    metrics = run.data.metrics
    record = {
        "model": args.model,
        "train_examples": int(run.data.params["data.train_examples"]),
        "epochs": args.epochs,
        "run_wall_seconds": wall,
        "model_log_seconds": metrics["model_log_seconds"],
        "model_log_share": metrics["model_log_seconds"] / wall,
        "model_bytes": int(metrics["model_bytes"]),
        "checkpoint_epoch": int(metrics["checkpoint_epoch"]),
        **runtime.provenance(),
    }
    print(
        f"{args.model}: run {wall:.1f} s, model saved and logged in {record['model_log_seconds']:.2f} s "
        f"({100 * record['model_log_share']:.1f}% of the run), {record['model_bytes'] / 1e6:.2f} MB"
    )
    out = runtime.write_measurement(record, Path(args.out) / f"model_logging_{args.model}.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
