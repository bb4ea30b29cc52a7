"""Benchmark: does an architecture compile once? Seeds of one model through XLA's persistent cache.

    python bench/compile_cache.py [--model resnet20] [--seeds 3] [--batch 128] [--out bench/results] [key=value ...]

Runs a grid sweep over `seed` (one architecture, `train.jit_compile=true`, 2 short epochs on
Fashion-MNIST, or `data=synthetic`) in one process with an empty compilation cache, then the
same sweep again in a fresh process (the cache now warm on disk). Each training logs
`compile_seconds` (its first epoch's excess over the second). Prints the figures, with the ratio
of each later seed's compile to the first one's, and writes JSON.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep(work: str, name: str, args, extra) -> list:
    seeds = list(range(args.seeds))
    command = [
        sys.executable,
        "run.py",
        "task=search",
        f"model={args.model}",
        "search.tuner=grid",
        f"search.space=[{{name: seed, path: seed, kind: choice, values: {seeds}}}]",
        f"search.max_trials={len(seeds)}",
        f"search.name={name}",
        f"search.directory={work}/tuner",
        "train.epochs=2",
        "train.jit_compile=true",
        "train.verbose=0",
        f"train.batch_size={args.batch}",
        f"data.limit={args.batch * args.steps}",
        "data.val_fraction=0.0",
        f"train.compile_cache={work}/cache",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        "tracking.experiment=compile_cache",
        *extra,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    experiment = client.get_experiment_by_name("compile_cache").experiment_id
    [parent] = client.search_runs(
        [experiment], f"tags.`lab.role` = 'parent' and tags.`lab.search` = '{name}'"
    )
    runs = client.search_runs([experiment], f"tags.`lab.parent` = '{parent.info.run_id}'")
    by_seed = sorted(runs, key=lambda r: int(r.data.params["seed"]))
    return [
        {
            "seed": int(r.data.params["seed"]),
            "compile_seconds": r.data.metrics["compile_seconds"],
            "epoch_seconds": [
                m.value
                for m in sorted(
                    client.get_metric_history(r.info.run_id, "epoch_seconds"), key=lambda m: m.step
                )
            ],
            "backend": parent.data.tags.get("lab.backend"),
            "device": parent.data.tags.get("lab.device"),
        }
        for r in by_seed
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch")
    parser.add_argument("--out", default="bench/results")
    args, extra = parser.parse_known_args()
    work = tempfile.mkdtemp()
    cold = sweep(work, "cold", args, extra)
    warm = sweep(work, "warm", args, extra)  # a new process: only the disk cache carries over
    first = cold[0]["compile_seconds"]
    for label, rows in (("same process, cold cache", cold), ("new process, warm cache", warm)):
        for row in rows:
            row["ratio_to_first"] = row["compile_seconds"] / first
            print(
                f"{label}: seed {row['seed']} compile {row['compile_seconds']:.2f} s "
                f"({row['ratio_to_first']:.0%} of the first seed's)"
            )
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    backend = cold[0]["backend"]
    path = out / f"compile_cache_{args.model}_{backend}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "compile_cache",
                "model": args.model,
                "backend": backend,
                "device": cold[0]["device"],
                "batch_size": args.batch,
                "extra": extra,
                "cold_process": cold,
                "warm_process": warm,
            },
            indent=1,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
