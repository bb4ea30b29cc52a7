"""Benchmark: what `search.pruner=median` saves (issue 14). The same 12-trial random search over
depth, width and connectivity on Fashion-MNIST, same seed (so the same 12 candidates), once with
`search.pruner=none` and once with `median`; each sweep is its own `python run.py` process, the
two run at once, each pinned to its own CPU core (taskset, one TensorFlow thread each), so that
whatever else the machine runs weighs on both alike.

    python bench/pruner.py [--trials 12] [--limit 6000] [--epochs 6] [--out results/cpu]

Reads each sweep's records from MLflow: wall time (process start to end), the best objective
(best-epoch val_accuracy), trials pruned and epochs trained. Prints them and writes JSON with the
machine, backend, versions and commands.
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pinned_sweeps import start_pinned, sweep_records, trial_seconds, wait_all  # noqa: E402
from lab import runtime  # noqa: E402

SPACE = (
    "search.space=[{name: blocks_per_stage, path: 'model.stages.*.blocks', kind: int, min: 1, max: 3},"
    "{name: width, path: model.width_multiplier, kind: choice, values: [0.5, 1.0, 1.5]},"
    "{name: connectivity, path: model.connectivity, kind: choice, values: [plain, residual]}]"
)


def start(pruner: str, core: int, args, folder: str):
    return start_pinned(
        [
            "task=search",
            "model=resnet20",
            "data=fashion_mnist",
            f"data.limit={args.limit}",
            "data.test_limit=2000",
            f"train.epochs={args.epochs}",
            "train.lr=0.05",
            "model.shortcut=B",
            "train.verbose=0",
            "train.jit_compile=false",
            "train.checkpoint=none",
            "search.tuner=random",
            f"search.max_trials={args.trials}",
            SPACE,
            f"search.pruner={pruner}",
            f"search.name=pruner_{pruner}",
            f"search.directory={folder}/tuner",
            f"tracking.uri=sqlite:///{folder}/mlflow_{pruner}.db",
            "tracking.experiment=pruner",
            "seed=0",
            f"hydra.run.dir={folder}/hydra-{pruner}",
        ],
        core,
    )


def figures(pruner: str, wall: float, command: list, folder: str) -> dict:
    client, parent, trials = sweep_records(
        f"{folder}/mlflow_{pruner}.db", "pruner", f"pruner_{pruner}"
    )
    pruned = [t for t in trials if "lab.pruned_at_epoch" in t.data.tags]
    epochs = sum(len(client.get_metric_history(t.info.run_id, "val_accuracy")) for t in trials)
    return {
        "wall_seconds": round(wall, 1),
        "trial_seconds": round(trial_seconds(trials), 1),
        "best_objective": parent.data.metrics["best_objective"],
        "trials": len(trials),
        "pruned": len(pruned),
        "epochs_trained": epochs,
        "pruned_at": sorted(int(t.data.tags["lab.pruned_at_epoch"]) for t in pruned),
        "command": " ".join(command[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--limit", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default=str(ROOT / "results" / "cpu"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        running = {
            pruner: start(pruner, core, args, folder)
            for core, pruner in enumerate(("none", "median"))
        }
        walls = wait_all(running)
        results = {
            pruner: figures(pruner, walls[pruner], running[pruner][2], folder) for pruner in running
        }
    none, median = results["none"], results["median"]
    record = {
        "trials": args.trials,
        "train_limit": args.limit,
        "epochs": args.epochs,
        **results,
        "wall_saving": round(1 - median["wall_seconds"] / none["wall_seconds"], 3),
        "trial_time_saving": round(1 - median["trial_seconds"] / none["trial_seconds"], 3),
        "best_objective_points_lost": round(
            100 * (none["best_objective"] - median["best_objective"]), 2
        ),
        **runtime.provenance(),
    }
    for pruner, measured in results.items():
        print(
            f"pruner={pruner}: {measured['wall_seconds']:.0f} s, best val_accuracy {measured['best_objective']:.4f}, "
            f"{measured['pruned']} of {measured['trials']} trials pruned, {measured['epochs_trained']} epochs trained"
        )
    print(
        f"median pruner: {100 * record['wall_saving']:.0f}% less wall time, best objective "
        f"{record['best_objective_points_lost']:+.2f} points lower"
    )
    out = runtime.write_measurement(record, Path(args.out) / "pruner_median.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
