"""What keeping the backend's compiled step between seeds saves, and that it changes no number.

Trains the main job's quick protocol (`experiment=plain_vs_residual quick=true`) for one network
under several seeds in one process, as a sweep does (`lab.training.reuse.free_memory` between
runs), twice, each in a fresh process:

- `flush`: as before 3ab1762, seeding with `keras.utils.set_random_seed` and clearing with
  `keras.backend.clear_session`, both of which empty TensorFlow's kernel cache, so the reused
  compiled model instantiates its step again on its first call;
- `kept`: as the lab does now (`lab.compat.tensorflow.kernel_cache_kept`).

Prints each run's wall time and first epoch, checks every learning figure is identical between the
two, and writes JSON with the day's speed.

    python bench/seed_flush.py --variant resnet56 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TIMINGS = ("epoch_seconds", "images_per_second")  # history keys that measure time, not learning


def trained(mode: str, variant: str, seeds: list, folder: str) -> list:
    """Runs `seeds` of `variant` in this process under `mode`; one record per run."""
    import keras
    from steps_per_execution import main_job_trial  # this folder's, first on sys.path

    from lab.training import reuse
    from lab.training.train import train

    if mode == "flush":
        reuse.seed = keras.utils.set_random_seed
        reuse.free_memory = keras.backend.clear_session
    records = []
    for seed in seeds:
        cfg = main_job_trial(variant, seed, folder)
        started = time.perf_counter()
        result = train(cfg)
        seconds = time.perf_counter() - started
        reuse.free_memory()  # as a sweep does between trials
        records.append(
            {
                "seed": seed,
                "wall_seconds": round(seconds, 2),
                "epoch_seconds": [round(float(v), 2) for v in result.history["epoch_seconds"]],
                "test_loss": result.test_loss,
                "test_accuracy": result.test_accuracy,
                "history": {
                    k: [float(v) for v in vals]
                    for k, vals in result.history.items()
                    if k not in TIMINGS
                },
            }
        )
    return records


def in_fresh_process(mode: str, variant: str, seeds: list) -> list:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "records.json"
        subprocess.run(
            [sys.executable, __file__, "--child", mode, "--variant", variant, "--out", str(out)]
            + ["--seeds", *map(str, seeds)],
            check=True,
            cwd=ROOT,
        )
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="resnet56")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="bench/reference/cpu/seed_flush.json")
    parser.add_argument("--child", choices=["flush", "kept"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            records = trained(args.child, args.variant, args.seeds, folder)
        Path(args.out).write_text(json.dumps(records))
        return
    from lab import runtime

    loop = runtime.reference_loop_seconds()
    modes = {mode: in_fresh_process(mode, args.variant, args.seeds) for mode in ("flush", "kept")}
    same = all(
        a["history"] == b["history"] and a["test_loss"] == b["test_loss"]
        for a, b in zip(modes["flush"], modes["kept"])
    )
    for mode, records in modes.items():
        for record in records:
            print(
                f"{mode}: seed {record['seed']}: {record['wall_seconds']} s, first epoch "
                f"{record['epoch_seconds'][0]} s, test_loss {record['test_loss']:.6f}"
            )
    print(f"every learning figure identical between flush and kept: {same}")
    record = {
        "command": " ".join(sys.argv),
        "variant": args.variant,
        "seeds": args.seeds,
        "reference_loop_seconds": loop,
        "identical": same,
        "modes": modes,
        **runtime.provenance(),
    }
    print(f"wrote {runtime.write_measurement(record, Path(args.out))}")


if __name__ == "__main__":
    main()
