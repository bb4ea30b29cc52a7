"""`task=bench`: what the lab costs over plain Keras, what compiling costs, what tracking costs.

One process, one model, the same uint8 arrays for both contenders:
- raw: `net.fit` of the lab-built network behind a `Rescaling` layer, SGD with momentum, no lab
  code in the loop (no augmentation, no callbacks but the clock);
- lab: `fit_and_evaluate`, the body of `task=train` and of every trial (on-device
  augmentation, standardisation, schedule, MLflow logging), plus the same clock.
Each fit runs one warm-up epoch and `bench.epochs` timed epochs of `bench.steps` steps. The warm-up
epoch minus a steady epoch is the compile time. The pair runs `bench.repeats` times, interleaved
in ABBA order (raw, lab, lab, raw: a noisy machine, an unlucky autotuning or the first fit's
warm-up affects both sides alike), and each side's best steady step time is compared; later
repeats show the compile from the warm cache. Optionally a small sweep measures each trial's
time outside `fit` (build, compile, oracle, logging). Prints a table and writes JSON to `bench.out`.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import keras
import numpy as np

from lab import runtime
from lab.config import RunConfig
from lab.data import Splits, load_splits
from lab.models import build_model
from lab.tracking import tracked_run
from lab.training import reuse
from lab.training.train import compile_seconds, fit_and_evaluate, run_tags, targets


class EpochClock(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch. No batch hooks, so Keras keeps dispatching steps
    asynchronously; an epoch ends when its logs are read, which waits for the device."""

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self.start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float(next(iter(logs.values()))) if logs else None  # the device has finished the epoch
        self.seconds.append(time.perf_counter() - self.start)


@dataclass
class FitTiming:
    """A fit of one warm-up epoch and N timed epochs of `steps` steps of `batch_size` images."""

    epoch_seconds: List[float]
    steps: int
    batch_size: int

    @property
    def steady_step_ms(self) -> float:
        return 1000 * statistics.median(self.epoch_seconds[1:]) / self.steps

    @property
    def images_per_second(self) -> float:
        return self.batch_size / (self.steady_step_ms / 1000)

    @property
    def compile_seconds(self) -> float:
        return compile_seconds(self.epoch_seconds)

    def figures(self) -> Dict[str, float]:
        steady = self.epoch_seconds[1:]
        return {
            "compile_seconds": round(self.compile_seconds, 3),
            "steady_step_ms": round(self.steady_step_ms, 3),
            "images_per_second": round(self.images_per_second, 1),
            "epoch_seconds": self.epoch_seconds,
            # the timed epochs' range: a compile time below it is within one epoch's noise
            "timed_epoch_spread_seconds": round(max(steady) - min(steady), 3) if steady else None,
        }


def bench_splits(cfg: RunConfig) -> Splits:
    """The dataset's training images repeated or cut to exactly steps x batch_size, no validation."""
    splits = load_splits(cfg.data, cfg.seed)
    wanted = cfg.bench.steps * cfg.train.batch_size
    order = np.arange(wanted) % len(splits.x_train)
    splits.x_train, splits.y_train = splits.x_train[order], splits.y_train[order]
    splits.x_val, splits.y_val = splits.x_val[:0], splits.y_val[:0]
    return splits


def raw_keras_fit(cfg: RunConfig, splits: Splits) -> FitTiming:
    """Plain Keras: the same network and arrays, `compile` and `fit`, nothing of the lab's loop."""
    keras.utils.set_random_seed(cfg.seed)
    net = build_model(cfg.model, splits.input_shape, splits.classes)
    inputs = keras.Input(splits.input_shape, dtype="uint8")
    model = keras.Model(inputs, net(keras.layers.Rescaling(1 / 255)(inputs)))
    optimizer = keras.optimizers.SGD(
        cfg.train.lr,
        momentum=cfg.train.momentum,
        nesterov=cfg.train.nesterov,
        weight_decay=cfg.train.weight_decay or None,
    )
    model.compile(
        optimizer,
        keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing),
        metrics=["accuracy"],
        jit_compile=cfg.train.jit_compile,
    )
    clock = EpochClock()
    model.fit(
        splits.x_train,
        targets(net, splits.y_train, splits.classes),
        batch_size=cfg.train.batch_size,
        epochs=1 + cfg.bench.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[clock],
    )
    return FitTiming(clock.seconds, cfg.bench.steps, cfg.train.batch_size)


def lab_fit(cfg: RunConfig, splits: Splits) -> Dict[str, object]:
    """The lab's own training path, tracked in MLflow like any run, with the same clock. Each
    repeat builds and compiles its model, as the raw side does (no compiled-model reuse)."""
    reuse.forget()
    clock = EpochClock()
    with tracked_run(cfg.tracking, f"bench-{cfg.model.name}", run_tags(cfg, "bench")) as run:
        fit_and_evaluate(cfg, splits, run, extra_callbacks=[clock])
    timing = FitTiming(clock.seconds, cfg.bench.steps, cfg.train.batch_size)
    return {"timing": timing, "mlflow_seconds": run.logging_seconds, "run_id": run.run_id}


def with_wall_seconds(fit) -> Dict[str, object]:
    start = time.perf_counter()
    result = fit()
    result = result if isinstance(result, dict) else {"timing": result}
    return {**result, "wall_seconds": time.perf_counter() - start}


def summarize(fits: List[Dict[str, object]]) -> Dict[str, object]:
    """One side's repeats: the best steady state, the first (cold) and later compiles, and for the
    lab the share of its wall time spent in MLflow calls."""
    best = min(fits, key=lambda fit: fit["timing"].steady_step_ms)
    summary = {
        **best["timing"].figures(),
        "compile_seconds": round(fits[0]["timing"].compile_seconds, 3),
        "compile_seconds_repeats": [round(f["timing"].compile_seconds, 3) for f in fits[1:]],
        "steady_step_ms_per_repeat": [round(f["timing"].steady_step_ms, 3) for f in fits],
        "wall_seconds": round(fits[0]["wall_seconds"], 3),
    }
    if "mlflow_seconds" in best:
        logging, wall = sum(f["mlflow_seconds"] for f in fits), sum(f["wall_seconds"] for f in fits)
        summary.update(
            mlflow_seconds=round(logging, 3),
            mlflow_share=round(logging / wall, 5),
            run_ids=[f["run_id"] for f in fits],
        )
    return summary


def sweep_overhead(cfg: RunConfig) -> Dict[str, object]:
    """A small sweep: per trial, its wall time (keras-tuner's trial begin to end, so the oracle
    and its state files count) against the time inside `fit` (the sum of its epochs)."""
    from lab.tasks.search.orchestration import search

    result = search(
        cfg.with_overrides(
            {
                "search.max_trials": cfg.bench.sweep_trials,
                "search.name": f"bench-{int(time.time())}",
                "search.restart_after_mib": None,
            }
        )
    )
    trials = []
    for trial_id, wall in result.trial_seconds.items():
        fit = result.fit_seconds.get(trial_id)
        if fit is not None:
            trials.append(
                {
                    "trial": trial_id,
                    "wall_seconds": round(wall, 3),
                    "fit_seconds": round(fit, 3),
                    "outside_fit_share": round(1 - fit / wall, 4),
                }
            )
    return {"trials": trials, "parent_run_id": result.parent_run_id}


def environment(cfg: RunConfig) -> Dict[str, object]:
    versions = {
        name: getattr(__import__(name), "__version__", "?")
        for name in ("keras", "keras_tuner", "mlflow", "numpy")
    }
    versions[runtime.backend()] = runtime.backend_version()
    return {
        "backend": runtime.backend(),
        "device": runtime.device_description(),
        "model": cfg.model.name,
        "data": cfg.data.name,
        "precision": cfg.train.precision.value,
        "batch_size": cfg.train.batch_size,
        "jit_compile": cfg.train.jit_compile,
        "steps": cfg.bench.steps,
        "timed_epochs": cfg.bench.epochs,
        "compile_cache": cfg.train.compile_cache,
        "compile_cache_entries_before": cache_entries(cfg),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": runtime.git_commit(),
    }


def cache_entries(cfg: RunConfig) -> Optional[int]:
    if cfg.train.compile_cache is None:
        return None
    path = Path(cfg.train.compile_cache).expanduser() / runtime.backend()
    return sum(1 for _ in path.rglob("*") if _.is_file()) if path.exists() else 0


def bench(given: RunConfig) -> Dict[str, object]:
    """Runs the benchmark described in the module docstring; returns the JSON record."""
    run_cfg = given.with_overrides(
        {"data.val_fraction": 0.0, "train.epochs": 1 + given.bench.epochs, "train.verbose": 0}
    )
    runtime.configure(run_cfg.train)
    record: Dict[str, object] = {
        "benchmark": "lab_vs_raw",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "reference_loop_seconds": runtime.reference_loop_seconds(5_000_000),
        **environment(run_cfg),
    }
    splits = bench_splits(run_cfg)
    raw_fits, lab_fits = [], []
    # raw, lab, lab, raw, ...: neither side always goes first
    for repeat in range(run_cfg.bench.repeats):
        order = ["raw", "lab"] if repeat % 2 == 0 else ["lab", "raw"]
        for side in order:
            if side == "raw" and run_cfg.bench.raw:
                raw_fits.append(with_wall_seconds(lambda: raw_keras_fit(run_cfg, splits)))
            elif side == "lab":
                lab_fits.append(with_wall_seconds(lambda: lab_fit(run_cfg, splits)))
    record["lab"] = summarize(lab_fits)
    if raw_fits:
        record["raw"] = summarize(raw_fits)
        record["lab_over_raw_step_time"] = round(
            record["lab"]["steady_step_ms"] / record["raw"]["steady_step_ms"], 4
        )
        record["lab_over_raw_per_repeat"] = [
            round(lab["timing"].steady_step_ms / raw["timing"].steady_step_ms, 4)
            for raw, lab in zip(raw_fits, lab_fits)
        ]
    if run_cfg.bench.sweep_trials:
        record["sweep"] = sweep_overhead(run_cfg)
    return record


def print_table(record: Dict[str, object]) -> None:
    from rich.table import Table

    from lab.models.analysis import wide_console

    table = Table(
        title=f"{record['model']} on {record['data']}: {record['backend']} {record['device']}, "
        f"{record['precision']}, batch {record['batch_size']}, jit {record['jit_compile']}"
    )
    for column in (
        "",
        "compile s (first)",
        "compile s (repeats)",
        "best ms/step",
        "images/s",
        "wall s (first)",
        "MLflow share",
    ):
        table.add_column(column, justify="right")
    for name in ("raw", "lab"):
        if name in record:
            row = record[name]
            table.add_row(
                name,
                f"{row['compile_seconds']:.2f}",
                " ".join(f"{c:.2f}" for c in row["compile_seconds_repeats"]),
                f"{row['steady_step_ms']:.2f}",
                f"{row['images_per_second']:,.0f}",
                f"{row.get('wall_seconds', math.nan):.1f}",
                f"{row['mlflow_share']:.2%}" if "mlflow_share" in row else "",
            )
    console = wide_console()
    console.print(table)
    if "lab_over_raw_step_time" in record:
        console.print(
            f"lab/raw steady-state step time: {record['lab_over_raw_step_time']:.3f} (best of each); "
            f"per repeat: {record['lab_over_raw_per_repeat']}"
        )
    for trial in record.get("sweep", {}).get("trials", []):
        console.print(
            f"sweep trial {trial['trial']}: {trial['wall_seconds']:.1f} s, "
            f"{trial['outside_fit_share']:.1%} of it outside fit"
        )


def write_record(record: Dict[str, object], out: str) -> Path:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = (
        folder
        / f"bench_{record['model']}_{record['backend']}_{record['precision']}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    path.write_text(json.dumps(record, indent=1, default=str))
    return path


__all__ = ["EpochClock", "FitTiming", "bench", "print_table", "write_record"]


def run(cfg: RunConfig) -> None:
    from lab.tasks.bench import bench, print_table, write_record

    record = bench(cfg)
    print_table(record)
    print(f"wrote {write_record(record, cfg.bench.out)}")
