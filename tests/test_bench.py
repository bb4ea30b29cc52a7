"""`task=bench` and the compilation cache: correct records, not speeds (timings are never asserted)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import FAST_TRAIN, TINY_RESNET, TINY_SPACE

from lab.config import PROJECT_ROOT, run_config
from lab.tasks.bench import bench, write_record

pytestmark = pytest.mark.core  # also run under KERAS_BACKEND=jax (README's test command)


def test_bench_times_raw_keras_the_lab_and_a_sweep(tracking, tmp_path):
    record = bench(
        run_config(
            [
                "task=bench",
                "data=synthetic",
                *TINY_RESNET,
                TINY_SPACE,
                *FAST_TRAIN,
                "bench.steps=3",
                "bench.epochs=2",
                "bench.sweep_trials=2",
                f"search.directory={tmp_path}/tuner",
                *tracking,
            ]
        )
    )
    assert (record["backend"], record["batch_size"], record["steps"], record["precision"]) == (
        os.environ.get("KERAS_BACKEND", "tensorflow"),
        32,
        3,
        "float32",
    )
    for name in ("raw", "lab"):
        figures = record[name]
        # one warm-up epoch, two timed (of the best repeat)
        assert len(figures["epoch_seconds"]) == 3
        assert (
            len(figures["steady_step_ms_per_repeat"]) == 2
            and len(figures["compile_seconds_repeats"]) == 1
        )
        assert figures["steady_step_ms"] == min(figures["steady_step_ms_per_repeat"]) > 0
        seconds = figures["epoch_seconds"]
        assert figures["steady_step_ms"] == pytest.approx(
            1000 * (seconds[1] + seconds[2]) / 2 / 3, rel=1e-2
        )
        assert figures["images_per_second"] == pytest.approx(
            32 / (figures["steady_step_ms"] / 1000), rel=1e-3
        )
    assert record["reference_loop_seconds"] > 0  # the day's speed, beside the wall times (issue 33)
    assert all(
        record[name]["compile_seconds"] >= 0
        and record[name]["timed_epoch_spread_seconds"] >= 0
        and all(c >= 0 for c in record[name]["compile_seconds_repeats"])
        for name in ("raw", "lab")
    )
    assert record["lab_over_raw_step_time"] == pytest.approx(
        record["lab"]["steady_step_ms"] / record["raw"]["steady_step_ms"], rel=1e-3
    )
    assert 0 < record["lab"]["mlflow_share"] < 1 and len(record["lab"]["run_ids"]) == 2
    trials = record["sweep"]["trials"]
    assert len(trials) == 2
    assert all(
        0 < t["fit_seconds"] < t["wall_seconds"] and 0 < t["outside_fit_share"] < 1 for t in trials
    )
    saved = json.loads(write_record(record, str(tmp_path / "results")).read_text())
    assert saved["lab"]["run_ids"] == record["lab"]["run_ids"]


def test_a_jit_compiled_model_lands_in_the_persistent_compilation_cache(tmp_path):
    """In a fresh process (TensorFlow reads its XLA flags once): the cache folder fills."""
    script = f"""
import keras, numpy as np
from lab import runtime
path = runtime.enable_compile_cache({str(tmp_path / "cache")!r})
if runtime.backend() == "jax":  # this tiny model compiles faster than the lab's 0.5 s threshold
    import jax
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
inputs = keras.Input((8, 8, 1))
x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
model.compile("sgd", "mse", jit_compile=True)
model.fit(np.zeros((8, 8, 8, 1)), np.zeros((8, 2)), batch_size=4, epochs=1, verbose=0)
print(path, sum(1 for p in path.rglob("*") if p.is_file()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    path, files = done.stdout.split()[-2:]
    assert path.endswith(os.environ.get("KERAS_BACKEND", "tensorflow")) and int(files) > 0


def test_compile_time_is_never_negative():
    """Issue 33: a first epoch faster than the median of the later ones gave -40 s."""
    from lab.training.train import compile_seconds

    assert compile_seconds([1.0, 2.0, 2.2]) == 0.0
    assert compile_seconds([5.0, 1.0, 1.2, 1.1]) == pytest.approx(3.9)
