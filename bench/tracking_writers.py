"""Benchmark: four processes logging to one `mlflow server` at once, over SQLite and PostgreSQL.

    python bench/tracking_writers.py [--writers 4] [--steps 200] [--out results/cpu]

Each writer opens a run (`lab.tracking.tracked_run`) and logs 5 metrics and a tag per step, one
request per call as training does. Prints, per backend, the wall time until the last writer
ended and the metric points per second over all writers; writes JSON with the machine, versions
and command. Needs Debian's `postgresql` and `psycopg[binary]` for the second backend.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import runtime  # noqa: E402
from lab.tracking.postgres import local_postgres  # noqa: E402
from lab.tracking.server import local_server  # noqa: E402

WRITER = """
import sys
from lab.config import TrackingConfig
from lab.tracking import tracked_run
steps = int(sys.argv[3])
with tracked_run(TrackingConfig(uri=sys.argv[1], experiment='writers'), sys.argv[2]) as run:
    for step in range(steps):
        run.log_metrics({f'm{k}': step * k for k in range(5)}, step=step)
        run.set_tags({'lab.step': step})
"""


def time_writers(uri: str, writers: int, steps: int) -> dict:
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, f"writer{i}", str(steps)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(writers)
    ]
    outputs = [p.communicate()[0] for p in processes]
    seconds = time.perf_counter() - start
    failed = [out[-500:] for p, out in zip(processes, outputs) if p.returncode != 0]
    if failed:
        raise SystemExit(f"writers failed on {uri}: {failed}")
    points = writers * steps * 5
    return {
        "wall_seconds": round(seconds, 2),
        "metric_points": points,
        "points_per_second": round(points / seconds, 1),
        "requests_per_second": round(writers * steps * 2 / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="results/cpu")
    args = parser.parse_args()
    record = {
        **runtime.provenance(),
        "command": " ".join(sys.argv),
        "writers": args.writers,
        "steps": args.steps,
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        stores = {
            "sqlite": f"sqlite:///{tmp}/mlflow.db",
            "postgresql": stack.enter_context(local_postgres()),
        }
        for backend, store in stores.items():
            server = stack.enter_context(
                local_server(store, tmp / f"{backend}.log", artifacts=tmp / f"{backend}-artifacts")
            )
            record[backend] = time_writers(server, args.writers, args.steps)
            print(
                f"{backend:>10}: {args.writers} writers x {args.steps} steps in {record[backend]['wall_seconds']} s, "
                f"{record[backend]['points_per_second']} metric points/s",
                flush=True,
            )
    out = runtime.write_measurement(record, ROOT / args.out / "tracking_writers.json")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
