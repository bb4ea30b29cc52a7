"""How long `python run.py task=report` takes over 50 training runs (issue 15 asks for under 15 s
here), from the command to its last line, imports included.

The store is made for the measure: 50 runs logged directly with what a real trial logs (its
~190 config params, spec hash, device and trained tags, final metrics, a 10-epoch curve), as
10 networks x 5 seeds over two experiments, plus one ablation sweep's parent (the main job's
config.yaml and a 20-row trials.csv), so every part of the report runs: pooling, both cost
figures, the forest plot, the two-way analysis and the page. (That it makes one query per experiment is
tested: tests/test_report.py.)

    .venv/bin/python bench/report_speed.py [--runs 50] [--out results/cpu/report_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from lab.config import run_config  # noqa: E402
from lab.config.code_version import git_commit  # noqa: E402
from lab.config.overrides import config_yaml, run_params  # noqa: E402
from lab.tasks.search.summary import to_csv  # noqa: E402

VARIANTS = [
    "plain20",
    "resnet20",
    "plain56",
    "resnet56",
    "resnet32",
    "resnet44",
    "wrn_16_2",
    "lenet5",
    "vgg11",
    "plain32",
]


def log_network_runs(client: MlflowClient, experiments, runs: int) -> None:
    rng = random.Random(0)
    params = run_params(run_config(["model=resnet20"]))
    for index in range(runs):
        variant, seed = VARIANTS[index // 5 % len(VARIANTS)], index % 5
        tags = {
            "lab.spec_hash": f"{index // 5:016x}",
            "lab.device": "cpu",
            "lab.trained": "true",
            "lab.task": "train",
            "lab.model": variant,
        }
        run = client.create_run(experiments[index % 2], tags=tags)
        finals = {
            "test_accuracy": 0.8 + 0.01 * (index // 5) + rng.gauss(0, 0.005),
            "params_total": 270_000 + index // 5,
            "macs": 40_000_000 * (1 + index // 5),
            "activation_bytes": 2_000_000 * (1 + index // 5 % 3),
            "best_epoch": 9,
            "epochs_trained": 10,
            "epoch_seconds_median": 3.0 + index // 5,
        }
        curve = [Metric("accuracy", 0.5 + 0.04 * epoch, 0, epoch) for epoch in range(1, 11)]
        logged = {**params, "model.name": variant, "seed": seed}
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in finals.items()] + curve,
            params=[Param(k, str(v)[:6000]) for k, v in logged.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED")


def log_ablation_parent(client: MlflowClient, experiment: str) -> None:
    cfg = run_config(["experiment=plain_vs_residual", "quick=true"])
    errors = {"plain20": 0.10, "resnet20": 0.08, "plain56": 0.30, "resnet56": 0.07}
    rows = [
        {
            "trial_id": str(i),
            "status": "COMPLETED",
            "variant": v,
            "seed": s,
            "train_steps": 320,
            "best_objective": 1 - errors[v],
            "train_error": errors[v] + 0.003 * ((s * 3 + i) % 5 - 2),
            "test_error": errors[v] + 0.02 + 0.003 * ((s + i) % 5 - 2),
            "not_trained": "",
        }
        for i, (v, s) in enumerate((v, s) for v in errors for s in range(5))
    ]
    parent = client.create_run(
        experiment, tags={"lab.role": "parent", "lab.search": cfg.search.name, "lab.task": "search"}
    )
    client.log_text(parent.info.run_id, config_yaml(cfg), "config.yaml")
    client.log_text(
        parent.info.run_id, to_csv(rows, [axis.name for axis in cfg.search.space]), "trials.csv"
    )
    client.set_terminated(parent.info.run_id, "FINISHED")


def timed_report(uri: str, out: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "run.py", "task=report", f"tracking.uri={uri}", f"report.out={out}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        "wall_seconds": round(time.perf_counter() - start, 2),
        "printed": done.stdout.strip().splitlines(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "results/cpu/report_speed.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        client = MlflowClient(uri)
        experiments = [
            client.create_experiment(name, artifact_location=f"{folder}/mlruns/{name}")
            for name in ("plain_vs_residual", "deep_vs_wide")
        ]
        log_network_runs(client, experiments, args.runs)
        log_ablation_parent(client, experiments[0])
        first = timed_report(uri, Path(folder) / "first")
        second = timed_report(uri, Path(folder) / "second")  # warm file cache
    record = {
        "what": f"python run.py task=report over {args.runs} training runs and one 20-trial ablation sweep",
        "command": "python bench/report_speed.py",
        "runs": args.runs,
        "first": first,
        "second": second,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {
            name: version(name) for name in ("mlflow", "matplotlib", "statsmodels", "scikit-learn")
        },
        "git_commit": git_commit(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"task=report over {args.runs} runs: {first['wall_seconds']} s, "
        f"then {second['wall_seconds']} s; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
