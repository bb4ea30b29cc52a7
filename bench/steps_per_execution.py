"""Does running several optimizer steps per call (Keras' `steps_per_execution`) make the main
job's trials faster on this CPU, and does it leave their numbers exactly as they are?

Trains one trial of the main job's quick protocol (`experiment=plain_vs_residual quick=true`,
one variant and seed) once per setting, in this process, and prints each setting's wall time
and its final metrics; writes JSON with the day's speed.

    python bench/steps_per_execution.py --variant resnet56 --settings 1 8 32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras

from lab import runtime
from lab.config import run_config
from lab.training.train import train

TIMINGS = ("epoch_seconds", "images_per_second")  # history keys that measure time, not learning


def main_job_trial(variant: str, seed: int, folder) -> object:
    """The config of one trial of the main job's quick protocol, its runs in `folder`."""
    return run_config(
        [
            "experiment=plain_vs_residual",
            "quick=true",
            f"model={variant}",
            f"seed={seed}",
            "train.verbose=0",
            f"tracking.uri=sqlite:///{folder}/mlflow.db",
        ]
    )


def trained_with(steps: int, variant: str, seed: int, folder: Path) -> dict:
    original = keras.Model.compile

    def compile_with_steps(self, *args, **kwargs):
        return original(self, *args, steps_per_execution=steps, **kwargs)

    keras.Model.compile = compile_with_steps
    try:
        cfg = main_job_trial(variant, seed, folder)
        started = time.perf_counter()
        result = train(cfg)
        seconds = time.perf_counter() - started
    finally:
        keras.Model.compile = original
    return {
        "steps_per_execution": steps,
        "wall_seconds": round(seconds, 2),
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "history": {
            k: [float(v) for v in vals] for k, vals in result.history.items() if k not in TIMINGS
        },
        "epoch_seconds": [round(float(v), 2) for v in result.history["epoch_seconds"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="resnet56")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--out", default="bench/reference/cpu/steps_per_execution.json")
    args = parser.parse_args()
    loop = runtime.reference_loop_seconds()
    with tempfile.TemporaryDirectory() as folder:
        # the first training compiles what later ones reuse: warm it up with the first setting
        trained_with(args.settings[0], args.variant, args.seed, Path(folder))
        results = [trained_with(s, args.variant, args.seed, Path(folder)) for s in args.settings]
    base = results[0]
    for result in results:
        same = result["history"] == base["history"] and result["test_loss"] == base["test_loss"]
        print(
            f"steps_per_execution={result['steps_per_execution']}: {result['wall_seconds']} s, "
            f"test_accuracy {result['test_accuracy']:.6f}, every metric identical to the first: {same}"
        )
        result["identical_to_first"] = same
    record = {
        "command": " ".join(sys.argv),
        "variant": args.variant,
        "seed": args.seed,
        "reference_loop_seconds": loop,
        "results": results,
        **runtime.provenance(),
    }
    print(f"wrote {runtime.write_measurement(record, Path(args.out))}")


if __name__ == "__main__":
    main()
