"""Benchmark: does a long sweep's resident memory keep growing? (`search` frees memory between trials)

    python bench/sweep_memory.py [--trials 30] [--out bench/results]

Runs a tiny random sweep on synthetic data (architecture axes vary, so trials build different
models) and records the process's resident set size after every trial. Prints the series and
the growth over the second half, and writes JSON.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lab import runtime  # noqa: E402
from lab.config import compose  # noqa: E402
from lab.search import search  # noqa: E402
from lab.search.sweep import LabTuner  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    samples = []
    original = LabTuner.on_trial_end

    def recording_on_trial_end(self, trial):
        original(self, trial)
        samples.append(rss_mib())
        print(f"trial {trial.trial_id}: {trial.status}, RSS {samples[-1]:.0f} MiB", flush=True)

    LabTuner.on_trial_end = recording_on_trial_end
    work = tempfile.mkdtemp()
    start = time.perf_counter()
    search(compose(["task=search", "data=synthetic", "train.epochs=1", "train.verbose=0", "train.jit_compile=false",
                    f"search.max_trials={args.trials}", "search.name=memory", f"search.directory={work}/tuner",
                    f"tracking.uri=sqlite:///{work}/mlflow.db"]))
    half = len(samples) // 2
    growth = samples[-1] - samples[half] if samples else float("nan")
    print(f"{len(samples)} trials in {time.perf_counter() - start:.0f} s; RSS {samples[0]:.0f} MiB after the first, "
          f"{samples[half]:.0f} after trial {half + 1}, {samples[-1]:.0f} after the last: "
          f"{growth:+.0f} MiB over the second half")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sweep_memory_{runtime.backend()}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"benchmark": "sweep_memory", "backend": runtime.backend(), "trials": len(samples),
                                "rss_mib_after_each_trial": samples, "second_half_growth_mib": growth}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
