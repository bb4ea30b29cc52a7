"""Benchmark: the disk a sweep that keeps its models uses (issue 14). A 20-trial random search over
depth, width and connectivity of ResNets on Fashion-MNIST with `train.checkpoint=best` and
`search.keep_models=3` (the defaults), run as one `python run.py` process into a fresh folder;
then every byte under that folder is counted by what it is.

    python bench/sweep_disk.py [--trials 20] [--limit 2000] [--epochs 1] [--out results/cpu]

Reported: the bytes of the models kept (`model/` of the trials still holding one) and of one
kept model each, the models deleted as trials fell out of the best three (`model_bytes` each
trial logged), the rest of the artifacts (plots, summaries, configs), the MLflow SQLite store
and keras-tuner's folder. Prints them and writes JSON with the machine, backend, versions and
the command.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow.tracking import MlflowClient  # noqa: E402

from lab import runtime  # noqa: E402

SPACE = (
    "search.space=[{name: blocks_per_stage, path: 'model.stages.*.blocks', kind: int, min: 1, max: 3},"
    "{name: width, path: model.width_multiplier, kind: choice, values: [0.5, 1.0, 1.5]},"
    "{name: connectivity, path: model.connectivity, kind: choice, values: [plain, residual]},"
    "{name: lr, path: train.lr, kind: float, min: 0.02, max: 0.2, log: true}]"
)  # 20 distinct candidates


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def sweep_command(args, folder: Path) -> list:
    return [
        sys.executable,
        "run.py",
        "task=search",
        "model=resnet20",
        "data=fashion_mnist",
        f"data.limit={args.limit}",
        "data.test_limit=1000",
        f"train.epochs={args.epochs}",
        "train.lr=0.05",
        "model.shortcut=B",
        "train.verbose=0",
        "train.jit_compile=false",
        "train.checkpoint=best",
        "search.keep_models=3",
        "search.tuner=random",
        f"search.max_trials={args.trials}",
        SPACE,
        "search.name=disk",
        f"search.directory={folder}/tuner",
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        "tracking.experiment=disk",
        "seed=0",
        f"hydra.run.dir={folder}/hydra",
    ]


def measure(folder: Path) -> dict:
    """Bytes by kind under a finished sweep's `folder`."""
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name("disk")
    trials = client.search_runs([experiment.experiment_id], "tags.`lab.role` = 'trial'")
    artifacts = folder / "mlruns"
    kept = {
        run.info.run_id: folder_bytes(Path(urlparse(run.info.artifact_uri).path) / "model")
        for run in trials
        if "lab.model_deleted" not in run.data.tags and "model_bytes" in run.data.metrics
    }
    deleted = [
        run.data.metrics["model_bytes"] for run in trials if "lab.model_deleted" in run.data.tags
    ]
    everything = folder_bytes(artifacts)
    return {
        "trials": len(trials),
        "models_kept": len(kept),
        "models_kept_bytes": sum(kept.values()),
        "bytes_per_kept_model": sorted(kept.values()),
        "models_deleted": len(deleted),
        "models_deleted_bytes": int(sum(deleted)),
        "other_artifact_bytes": everything - sum(kept.values()),
        "mlflow_db_bytes": (folder / "mlflow.db").stat().st_size,
        "tuner_folder_bytes": folder_bytes(folder / "tuner"),
        "total_bytes": folder_bytes(folder) - folder_bytes(folder / "hydra"),
        "log_seconds_share": model_log_share(trials),
    }


def model_log_share(trials) -> float:
    """Time spent saving and logging models (`model_log_seconds`), as a share of the trials' time
    (their runs' start to end)."""
    logged = sum(run.data.metrics.get("model_log_seconds", 0.0) for run in trials)
    spent = sum((run.info.end_time - run.info.start_time) / 1000 for run in trials)
    return round(logged / spent, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "results" / "cpu"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        command = sweep_command(args, folder)
        began = time.perf_counter()
        subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
        record = {
            "wall_seconds": round(time.perf_counter() - began, 1),
            **measure(folder),
            "sweep_command": " ".join(command[1:]).replace(name, "FOLDER"),
            **runtime.provenance(),
        }
    mib = 2**20
    print(
        f"{record['trials']} trials in {record['wall_seconds']:.0f} s: {record['total_bytes'] / mib:.1f} MiB in all"
    )
    print(
        f"  {record['models_kept']} models kept, {record['models_kept_bytes'] / mib:.2f} MiB "
        f"({', '.join(f'{b / mib:.2f}' for b in record['bytes_per_kept_model'])} MiB each)"
    )
    print(
        f"  {record['models_deleted']} models deleted as they fell out of the best 3: "
        f"{record['models_deleted_bytes'] / mib:.2f} MiB freed"
    )
    print(
        f"  other artifacts {record['other_artifact_bytes'] / mib:.2f} MiB, "
        f"mlflow.db {record['mlflow_db_bytes'] / mib:.2f} MiB, "
        f"tuner folder {record['tuner_folder_bytes'] / mib:.2f} MiB"
    )
    print(
        f"  saving and logging models: {100 * record['log_seconds_share']:.1f}% of the trials' time"
    )
    out = runtime.write_measurement(record, Path(args.out) / "sweep_disk_20.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
