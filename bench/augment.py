"""Benchmark: the lab's on-device pad-crop-flip against Keras' RandomTranslation + RandomFlip.

    python bench/augment.py [--batch 512] [--steps 50] [--out bench/results]

Times training steps of a tiny model behind each augmentation, inside a jitted `fit` as in
training, minus the same model without augmentation, on the current backend and device.
Prints a table and writes JSON; compare figures only within one run.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from lab import runtime
from lab.training.preprocessing import RandomPadCropFlip


def candidates(shape):
    pad_fraction = 4 / shape[0]
    keras_layers = [
        keras.layers.RandomTranslation(pad_fraction, pad_fraction, fill_mode="constant", seed=0),
        keras.layers.RandomFlip("horizontal", seed=0),
    ]
    return {
        "no augmentation": [],
        "lab RandomPadCropFlip(pad=4, flip)": [RandomPadCropFlip(4, True, seed=0)],
        "keras RandomTranslation + RandomFlip": keras_layers,
    }


def time_in_fit(layers, images, labels, batch, steps):
    """Seconds per training step of a tiny jitted model (pool + dense) behind the augmentation,
    as the layers run inside `fit`; the first epoch compiles and is timed apart."""
    inputs = keras.Input(images.shape[1:])
    x = inputs
    for layer in layers:
        x = layer(x)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True
    )
    start = time.perf_counter()
    model.fit(images[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return compile_s, (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 32, 3])
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (args.batch * args.steps, *args.shape)).astype("float32")
    labels = rng.integers(0, 10, len(images))
    rows = []
    for name, layers in candidates(args.shape).items():
        compile_s, step_s = time_in_fit(layers, images, labels, args.batch, args.steps)
        base = rows[0]["ms_per_step"] if rows else step_s * 1e3
        rows.append(
            {
                "layer": name,
                "compile_s": compile_s,
                "ms_per_step": step_s * 1e3,
                "augment_ms": step_s * 1e3 - base,
            }
        )
        print(
            f"{name:40s} {step_s * 1e3:8.2f} ms/step, augmentation {step_s * 1e3 - base:7.2f} ms "
            f"(batch {args.batch}; first epoch {compile_s:.1f} s)",
            flush=True,
        )
    ratio = rows[2]["augment_ms"] / max(rows[1]["augment_ms"], 1e-3)
    print(f"keras / lab augmentation-time ratio: {ratio:.1f}")
    result = {
        "benchmark": "augment",
        "backend": runtime.backend(),
        "device": runtime.device_description(),
        "batch": args.batch,
        "shape": args.shape,
        "steps": args.steps,
        "rows": rows,
        "keras_over_lab_augment_time": ratio,
        "keras_version": keras.__version__,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"augment_{runtime.backend()}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
