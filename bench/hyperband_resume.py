"""Benchmark: what `search.hyperband_resume` saves. The same Hyperband sweep (LeNet-5 on a slice of
Fashion-MNIST, a learning-rate axis, max_epochs 9, factor 3: 23 trials in three brackets, same seed,
so the same candidates and the same rungs) once with each promoted trial continuing its previous
rung's training (`true`) and once with every rung trained from scratch (`false`). Both use one
learning-rate schedule over max_epochs per trial, so they train the same way. Each sweep is its own
`python run.py` process; the two run at once, each pinned to its own CPU core (taskset, one
TensorFlow thread each), so that whatever else the machine runs weighs on both alike.

    python bench/hyperband_resume.py [--limit 2500] [--max-epochs 9] [--factor 3] [--out results/cpu]

Reads each sweep's records from MLflow: wall time (process start to end), epochs trained (the
epochs every trial's run logged), the sum of the trials' seconds (their runs' start to end), the
best objective (best-epoch val_accuracy), trials continued. Prints them and writes JSON with the
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

SPACE = "search.space=[{name: lr, path: train.lr, kind: float, min: 0.01, max: 0.3, log: true}]"
MODES = {"on": "true", "off": "false"}  # search.hyperband_resume


def start(mode: str, core: int, args, folder: str):
    return start_pinned(
        [
            "task=search",
            "model=lenet5",
            "data=fashion_mnist",
            f"data.limit={args.limit}",
            "data.test_limit=1000",
            "train.verbose=0",
            "train.jit_compile=false",
            "train.checkpoint=none",
            "search.tuner=hyperband",
            f"search.max_epochs={args.max_epochs}",
            f"search.factor={args.factor}",
            SPACE,
            f"search.hyperband_resume={MODES[mode]}",
            f"search.name=hyperband_resume_{mode}",
            f"search.directory={folder}/tuner",
            f"tracking.uri=sqlite:///{folder}/mlflow_{mode}.db",
            "tracking.experiment=hyperband_resume",
            "seed=0",
            f"hydra.run.dir={folder}/hydra-{mode}",
        ],
        core,
    )


def figures(mode: str, wall: float, command: list, folder: str) -> dict:
    client, parent, trials = sweep_records(
        f"{folder}/mlflow_{mode}.db", "hyperband_resume", f"hyperband_resume_{mode}"
    )
    epochs = sum(len(client.get_metric_history(t.info.run_id, "loss")) for t in trials)
    continued = [t for t in trials if "lab.continued_from" in t.data.tags]
    return {
        "wall_seconds": round(wall, 1),
        "epochs_trained": epochs,
        "trial_seconds": round(trial_seconds(trials), 1),
        "best_objective": parent.data.metrics["best_objective"],
        "trials": len(trials),
        "trials_continued": len(continued),
        "command": " ".join(command[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2500)
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results" / "cpu"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        running = {mode: start(mode, core, args, folder) for core, mode in enumerate(MODES)}
        walls = wait_all(running)
        results = {mode: figures(mode, walls[mode], running[mode][2], folder) for mode in running}
    on, off = results["on"], results["off"]
    record = {
        "train_limit": args.limit,
        "max_epochs": args.max_epochs,
        "factor": args.factor,
        "resume_on": on,
        "resume_off": off,
        "wall_ratio": round(on["wall_seconds"] / off["wall_seconds"], 3),
        "epochs_ratio": round(on["epochs_trained"] / off["epochs_trained"], 3),
        "trial_seconds_ratio": round(on["trial_seconds"] / off["trial_seconds"], 3),
        **runtime.provenance(),
    }
    for mode, measured in results.items():
        print(
            f"hyperband_resume={MODES[mode]}: {measured['wall_seconds']:.0f} s wall, "
            f"{measured['epochs_trained']} epochs trained, {measured['trial_seconds']:.0f} s in trials, "
            f"best val_accuracy {measured['best_objective']:.4f}, "
            f"{measured['trials_continued']} of {measured['trials']} trials continued"
        )
    print(
        f"resume on / off: wall {record['wall_ratio']:.2f}, epochs {record['epochs_ratio']:.2f}, "
        f"trial seconds {record['trial_seconds_ratio']:.2f}"
    )
    out = runtime.write_measurement(record, Path(args.out) / "hyperband_resume.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
