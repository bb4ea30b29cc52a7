"""Benchmark: does a long sweep's resident memory keep growing?

    python bench/sweep_memory.py [--trials 30] [--restart-after 256 | --restart-after none] [--out bench/results]

Runs a tiny random sweep on synthetic data (architecture axes vary, so trials build different
models) through `run.py`, as a user does. The sweep logs its resident memory after every trial
(the parent run's `rss_mib`, step = trials so far); `search.restart_after_mib` makes `run.py`
restart the process and resume the sweep once it has grown that much. Prints the series, the
growth per trial within one process and the restarts, and writes JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESTART_LINE = "restarting to resume it in a fresh process"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--restart-after", default="256", help="MiB, or none to never restart")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    work = tempfile.mkdtemp()
    uri = f"sqlite:///{work}/mlflow.db"
    limit = "null" if args.restart_after == "none" else args.restart_after
    command = [
        sys.executable,
        "run.py",
        "task=search",
        "data=synthetic",
        "train.epochs=1",
        "train.verbose=0",
        "train.jit_compile=false",
        f"search.max_trials={args.trials}",
        "search.name=memory",
        f"search.restart_after_mib={limit}",
        f"search.directory={work}/tuner",
        f"tracking.uri={uri}",
        "tracking.experiment=memory",
    ]
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"the sweep failed:\n{done.stderr[-3000:]}")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    [parent] = client.search_runs(
        [client.get_experiment_by_name("memory").experiment_id], "tags.`lab.role` = 'parent'"
    )
    series = [
        m.value
        for m in sorted(
            client.get_metric_history(parent.info.run_id, "rss_mib"), key=lambda m: m.step
        )
    ]
    restarts = done.stdout.count(RESTART_LINE)
    rises = [
        b - a for a, b in zip(series, series[1:]) if b >= a
    ]  # a restart (or a collection) is a drop
    per_trial = sum(rises) / len(rises) if rises else float("nan")
    backend = parent.data.tags.get("lab.backend", "?")
    print(
        f"{backend}: {len(series)} trials in {seconds:.0f} s, {restarts} restarts "
        f"(search.restart_after_mib={limit}); RSS after each trial (MiB): {[round(v) for v in series]}"
    )
    print(
        f"mean rise between consecutive trials (drops excluded): {per_trial:+.1f} MiB; "
        f"highest RSS {max(series):.0f} MiB, "
        f"last {series[-1]:.0f} MiB"
    )
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sweep_memory_{backend}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "sweep_memory",
                "backend": backend,
                "trials": len(series),
                "restart_after_mib": limit,
                "restarts": restarts,
                "seconds": seconds,
                "rss_mib_after_each_trial": series,
                "mean_rise_mib_between_trials": per_trial,
                "max_rss_mib": max(series),
            },
            indent=1,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
