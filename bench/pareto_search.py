"""Does a multi-objective sampler find a better accuracy/MACs front than random search, at equal
trials? Each sampler runs the same sweep (`python run.py task=search`, the lab's own path) from
several search seeds; the hypervolume of the front found after k trials is computed for every k
from the trials' recorded objectives, against one reference point shared by every run.

The space: ResNet blocks per stage (1-3: ResNet-8/14/20), width multiplier (0.25, 0.5, 1),
connectivity (plain, residual) and block (basic, bottleneck): 36 networks (projection shortcuts,
option B: the stem keeps 16 channels, and option A cannot narrow them to a stage of 4), on 14x14
Fashion-MNIST (the first 4,000 training images, 400 held out for validation), 2 epochs of
batch 32 (226 steps) per trial. Objectives: validation accuracy (max) and MACs (min).
Samplers: keras-tuner's random search (`search.tuner=random`), Optuna's NSGA-II and TPE
(`search.tuner=optuna`). The hypervolume's reference point: each objective's worst value over
every trial of every run (the grid's too), moved a tenth of its range further
(`lab.stats.pareto.default_reference`, as a sweep's own summary does). Chance accuracy (0.1)
would be a reference too far: the rectangle every run dominates below the worst network's accuracy
would be most of each hypervolume and hide the differences.

    .venv/bin/python bench/pareto_search.py [--trials 12] [--seeds 0 1 2]
        [--samplers random nsga2 tpe] [--grid] [--out results/cpu/pareto_search.json]

`--grid` also trains every network of the space once (seed 0): the front the samplers approach.
Run again over the same `--work` folder, the sweeps that finished there are read, not retrained.

Writes the JSON (every trial's point, every run's hypervolume history, the machine, versions,
reference loop and the command), a markdown table beside it, and a figure (hypervolume against
trials: each sampler's mean over seeds, its range shaded).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from lab import runtime  # noqa: E402
from lab.stats.pareto import default_reference, hypervolume_history  # noqa: E402

DIRECTIONS = ["max", "min"]
OBJECTIVES = ["val_accuracy", "macs"]
SWEEP = [
    "task=search",
    "model=resnet20",
    "data=fashion_mnist",
    "data.downsample=2",
    "data.limit=4000",
    "data.test_limit=1000",
    "train.epochs=2",
    "train.batch_size=32",
    "train.checkpoint=none",
    "train.verbose=0",
    "model.shortcut=B",
    "search.objectives=[{name: val_accuracy}, {name: macs}]",
    "search.max_consecutive_failed_trials=100",
    "search.space=[{name: blocks, path: 'model.stages.*.blocks', kind: int, min: 1, max: 3},"
    " {name: width, path: model.width_multiplier, values: [0.25, 0.5, 1.0]},"
    " {name: connectivity, path: model.connectivity, values: [plain, residual]},"
    " {name: block, path: model.block, values: [basic, bottleneck]}]",
]
SAMPLERS = {
    "random": ["search.tuner=random"],
    "nsga2": ["search.tuner=optuna", "search.sampler=nsga2"],
    "tpe": ["search.tuner=optuna", "search.sampler=tpe"],
}
# `--grid`: every network of the space once (seed 0), for the front the samplers approach.
GRID = ("grid", ["search.tuner=grid"])
SPACE_SIZE = 3 * 3 * 2 * 2


def run_search(work: Path, sampler: str, seed: int, trials: int) -> None:
    """One sweep, in `work`'s store and tuner folder (a sweep that FINISHED there before is only
    reported again: its records are read, nothing is trained)."""
    args = [
        *SWEEP,
        *dict([GRID, *SAMPLERS.items()])[sampler],
        f"seed={seed}",
        f"search.max_trials={trials}",
        f"search.name={sampler}-seed{seed}",
        f"search.directory={work}/tuner",
        f"tracking.uri=sqlite:///{work}/mlflow.db",
        "tracking.experiment=pareto-bench",
        f"hydra.run.dir={work}/hydra/{sampler}-seed{seed}",
    ]
    done = subprocess.run(
        [sys.executable, "run.py", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{sampler} seed {seed} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def sweep_seconds(work: Path, name: str) -> float:
    """The sweep's wall time as its parent run recorded it (start to end): the time it trained,
    also when this invocation only read it again."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    experiment = client.get_experiment_by_name("pareto-bench").experiment_id
    [parent] = client.search_runs(
        [experiment], filter_string=f"tags.`lab.search` = '{name}' and tags.`lab.role` = 'parent'"
    )
    return (parent.info.end_time - parent.info.start_time) / 1000


def trial_points(work: Path, name: str) -> List[Optional[List[float]]]:
    """Each trial's (accuracy, MACs) in trial order; None for a trial that scored nothing."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    experiment = client.get_experiment_by_name("pareto-bench").experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.`lab.search` = '{name}'")
    points: Dict[int, Optional[List[float]]] = {}
    for run in runs:
        if run.data.tags.get("lab.role") != "trial":
            continue
        metrics = run.data.metrics
        keys = [f"objective.{o}" for o in OBJECTIVES]
        scored = run.info.status == "FINISHED" and all(k in metrics for k in keys)
        trial = int(run.data.tags["lab.trial"])
        if scored or trial not in points:
            points[trial] = [metrics[k] for k in keys] if scored else None
    return [points.get(trial) for trial in range(max(points) + 1)] if points else []


def summarise(histories: Dict[str, List[List[float]]], checkpoints: List[int]) -> Dict[str, dict]:
    """Per sampler and checkpoint k: the mean, spread, min and max hypervolume over seeds."""
    table = {}
    for sampler, runs in histories.items():
        table[sampler] = {}
        for k in checkpoints:
            values = np.array([run[k - 1] for run in runs if len(run) >= k])
            table[sampler][k] = {
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
    return table


def markdown(record: dict) -> str:
    checkpoints = record["checkpoints"]
    lines = [
        "# Multi-objective sampler vs random search at equal trials",
        "",
        f"Command: `{record['command']}`",
        "",
        f"Machine: {record['machine']}; backend {record['backend']}; reference loop "
        f"{record['reference_loop_seconds']} s before, {record['reference_loop_seconds_after']} s after; "
        f"this command {record['wall_seconds']:.0f} s; versions {record['versions']}.",
        "",
        "Each sweep's own wall time (its parent run, start to end): "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in record["run_seconds"].items())
        + ".",
        "",
        *([record["note"], ""] if record.get("note") else []),
        f"Hypervolume of the front found after k trials (accuracy x MACs dominated above the reference "
        f"point: accuracy {record['reference'][0]:.4f}, MACs {record['reference'][1]:,.0f}; in units of "
        "accuracy x MMACs), mean ± sd over search seeds "
        f"{record['seeds']} (min-max in brackets):",
        "",
        "| sampler | " + " | ".join(f"k={k}" for k in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
    ]
    for sampler, row in record["summary"].items():
        cells = [
            f"{c['mean'] / 1e6:.3f} ± {c['sd'] / 1e6:.3f} [{c['min'] / 1e6:.3f}-{c['max'] / 1e6:.3f}]"
            for c in (row[str(k)] if str(k) in row else row[k] for k in checkpoints)
        ]
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    if record.get("grid_hypervolume"):
        lines += grid_lines(record, checkpoints)
    lines += ["", "![hypervolume against trials](pareto_search.png)", ""]
    return "\n".join(lines)


def grid_lines(record: dict, checkpoints: List[int]) -> List[str]:
    """Each sampler's mean hypervolume as a share of the whole grid's."""
    grid = record["grid_hypervolume"]
    lines = [
        "",
        f"Every one of the {SPACE_SIZE} networks trained once (a grid, seed 0): hypervolume "
        f"{grid / 1e6:.3f}. Each sampler's mean share of it after k trials (the grid's accuracies "
        "are one seed's draw: a sampler's other seeds can reach past it):",
        "",
        "| sampler | " + " | ".join(f"k={k}" for k in checkpoints) + " |",
        "|---|" + "---|" * len(checkpoints),
    ]
    for sampler, row in record["summary"].items():
        cells = [
            f"{(row[str(k)] if str(k) in row else row[k])['mean'] / grid:.0%}" for k in checkpoints
        ]
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return lines


def figure(histories: Dict[str, List[List[float]]], path: Path, grid: Optional[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler, runs in histories.items():
        length = min(len(run) for run in runs)
        values = np.array([run[:length] for run in runs]) / 1e6
        k = np.arange(1, length + 1)
        ax.plot(k, values.mean(axis=0), label=f"{sampler} (mean of {len(runs)} seeds)")
        ax.fill_between(k, values.min(axis=0), values.max(axis=0), alpha=0.2)
    if grid:
        ax.axhline(
            grid / 1e6, color="0.4", linestyle=":", label=f"all {SPACE_SIZE} networks (seed 0)"
        )
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (accuracy x MMACs)")
    ax.set_title("Front found against trials: 14x14 Fashion-MNIST, 36 ResNets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    parser.add_argument(
        "--grid", action="store_true", help=f"also train all {SPACE_SIZE} networks once"
    )
    parser.add_argument("--note", default="", help="how the runs were made, for the record")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pareto_bench"))
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results/cpu/pareto_search.json")
    args = parser.parse_args()
    loop_before = runtime.reference_loop_seconds()
    began = time.perf_counter()
    points, walls = {}, {}
    for sampler in args.samplers:
        for seed in args.seeds:
            name = f"{sampler}-seed{seed}"
            run_search(args.work, sampler, seed, args.trials)
            walls[name] = sweep_seconds(args.work, name)
            points[name] = trial_points(args.work, name)
            print(
                f"{name}: {walls[name]:.0f} s, {sum(p is not None for p in points[name])} scored",
                flush=True,
            )
    if args.grid:
        run_search(args.work, "grid", 0, SPACE_SIZE)
        walls["grid-seed0"] = sweep_seconds(args.work, "grid-seed0")
        points["grid-seed0"] = trial_points(args.work, "grid-seed0")
    every = [p for run in points.values() for p in run if p is not None]
    reference = default_reference(every, DIRECTIONS)
    histories = {
        sampler: [
            hypervolume_history(points[f"{sampler}-seed{seed}"], DIRECTIONS, reference)
            for seed in args.seeds
        ]
        for sampler in args.samplers
    }
    grid = None
    if args.grid:
        grid = hypervolume_history(points["grid-seed0"], DIRECTIONS, reference)[-1]
    checkpoints = sorted({k for k in (3, 6, 9, 12, 16, 24, 32, args.trials) if k <= args.trials})
    record = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {runtime_cores()} cores",
        "backend": runtime.backend(),
        "versions": {
            p: version(p) for p in ("keras", "keras-tuner", "optuna", "moocore", "mlflow")
        },
        "reference_loop_seconds": loop_before,
        "reference_loop_seconds_after": runtime.reference_loop_seconds(),
        # this invocation's; each sweep's own (its parent run's start to end) are run_seconds
        "wall_seconds": time.perf_counter() - began,
        "sweep": SWEEP,
        "seeds": args.seeds,
        "trials": args.trials,
        "reference": reference,
        "checkpoints": checkpoints,
        "points": points,
        "run_seconds": walls,
        "histories": histories,
        "summary": summarise(histories, checkpoints),
        "grid_hypervolume": grid,
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    args.out.with_suffix(".md").write_text(markdown(record))
    figure(histories, args.out.with_suffix(".png"), grid)
    print(markdown(record))


def runtime_cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
