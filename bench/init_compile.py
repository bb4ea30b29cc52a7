"""Benchmark: building a network with Keras' `he_normal` against the lab's host-drawn `HeNormal`
(lab/models/layers.py), each in a fresh process (compiled kernels are cached per process).

    KERAS_BACKEND=jax python bench/init_compile.py [--model googlenet] [--input 224,224,3] [--out results/cpu]

On JAX every new weight shape compiles Keras' random kernel; NumPy compiles nothing. Prints the
build times and writes JSON with the machine, backend, versions and command.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUILD = """
import sys, time
sys.path.insert(0, {root!r})
import lab.models.layers as layers
if {keras_own}:
    layers.kernel_initializer = lambda: "he_normal"
from lab.config import register_configs, run_config
from lab.models import build_model
register_configs()
spec = run_config(["model={model}"]).model
started = time.perf_counter()
net = build_model(spec, {shape}, {classes})
print(time.perf_counter() - started, net.count_params())
"""


def build_seconds(model: str, shape, classes: int, keras_own: bool) -> tuple:
    code = BUILD.format(
        root=str(ROOT), keras_own=keras_own, model=model, shape=tuple(shape), classes=classes
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    seconds, params = out.split()[-2:]
    return float(seconds), int(params)


def main() -> None:
    from lab import runtime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="googlenet")
    parser.add_argument("--input", default="224,224,3")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "results" / "cpu"))
    args = parser.parse_args()
    shape = [int(v) for v in args.input.split(",")]
    keras_own, keras_params = build_seconds(args.model, shape, args.classes, keras_own=True)
    lab_own, lab_params = build_seconds(args.model, shape, args.classes, keras_own=False)
    assert keras_params == lab_params
    record = {
        "model": args.model,
        "input_shape": shape,
        "params": lab_params,
        "build_seconds_keras_he_normal": round(keras_own, 2),
        "build_seconds_lab_he_normal": round(lab_own, 2),
        "speedup": round(keras_own / lab_own, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        **runtime.provenance(),
    }
    print(
        f"{args.model} at {shape} on {record['backend']}: Keras' he_normal {keras_own:.1f} s, "
        f"the lab's host-drawn HeNormal {lab_own:.1f} s ({record['speedup']}x)"
    )
    out = runtime.write_measurement(
        record, Path(args.out) / f"init_compile_{args.model}_{runtime.backend()}.json"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
