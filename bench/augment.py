"""Benchmark: the lab's on-device pad-crop-flip against Keras' RandomTranslation + RandomFlip.

    python bench/augment.py [--batch 512] [--steps 50] [--out bench/results]

Times one jitted augmentation call per step (the layer's training path, as inside `fit`) on
the current backend and device, after a warm-up call that compiles. Prints a table and writes
JSON; compare figures only within one run.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lab import runtime  # noqa: E402
from lab.training.preprocessing import RandomPadCropFlip  # noqa: E402


def candidates(shape):
    pad_fraction = 4 / shape[0]
    keras_layers = keras.Sequential([keras.layers.RandomTranslation(pad_fraction, pad_fraction, fill_mode="constant"),
                                     keras.layers.RandomFlip("horizontal")])
    return {"lab RandomPadCropFlip(pad=4, flip)": RandomPadCropFlip(4, True, seed=0),
            "keras RandomTranslation + RandomFlip": keras_layers}


def time_model(layer, images, steps):
    inputs = keras.Input(images.shape[1:])
    model = keras.Model(inputs, layer(inputs, training=True))
    # predict_on_batch jits once; training=True is baked into the graph above.
    start = time.perf_counter()
    keras.ops.convert_to_numpy(model.predict_on_batch(images))
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        out = model.predict_on_batch(images)
    keras.ops.convert_to_numpy(out)
    return compile_s, (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 32, 3])
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    images = np.random.default_rng(0).uniform(0, 255, (args.batch, *args.shape)).astype("float32")
    rows = []
    for name, layer in candidates(args.shape).items():
        compile_s, step_s = time_model(layer, images, args.steps)
        rows.append({"layer": name, "compile_s": compile_s, "ms_per_batch": step_s * 1e3})
        print(f"{name:40s} {step_s * 1e3:8.2f} ms/batch of {args.batch}   (first call {compile_s:.1f} s)", flush=True)
    ratio = rows[1]["ms_per_batch"] / rows[0]["ms_per_batch"]
    print(f"keras / lab time ratio: {ratio:.1f}")
    result = {"benchmark": "augment", "backend": runtime.backend(), "device": runtime.device_description(),
              "batch": args.batch, "shape": args.shape, "steps": args.steps, "rows": rows,
              "keras_over_lab": ratio, "keras_version": keras.__version__}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"augment_{runtime.backend()}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
