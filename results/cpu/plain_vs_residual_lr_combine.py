"""(a) at each network's best learning rate, on seeds 0-10: stage 2's runs (seeds 0-4) and stage 3's
(seeds 5-10), the same spec, judged by the lab's own verdict code (results/cpu/plain_vs_residual_lr.md).

    .venv/bin/python results/cpu/plain_vs_residual_lr_combine.py STAGE2_STORE_URI STAGE3_STORE_URI
"""
import sys
from mlflow.tracking import MlflowClient
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric
from lab.search.ablation import verdicts

rows = []
for uri in sys.argv[1:] or ("sqlite:////tmp/lrcheck2/mlflow.db", "sqlite:////tmp/lrcheck3/mlflow.db"):
    client = MlflowClient(uri)
    for exp in client.search_experiments():
        for r in client.search_runs([exp.experiment_id], "tags.`lab.role` = 'trial'", max_results=1000):
            name = r.data.params["model.name"]
            if name not in ("plain20", "plain56") or r.info.status != "FINISHED":
                continue
            m = r.data.metrics
            rows.append({"trial_id": f"{name}-{r.data.params['seed']}", "status": "COMPLETED", "variant": name,
                         "seed": r.data.params["seed"], "best_objective": m["best_val_accuracy"],
                         "train_error": round(1 - m["accuracy"], 6), "train_examples": 500,
                         "train_steps": m["train_steps"], "not_trained": r.data.tags.get("lab.not_trained", ""),
                         "improving": m.get("train_error_drop_last_quarter", "")})
claim = ComparisonConfig("plain20", "plain56", Metric.train_error, Expectation.worse,
                         claim="(a) plain-56 trains worse than plain-20, each at its best lr")
for seeds in (range(5), range(11)):
    keys = [str(s) for s in seeds]
    [v] = verdicts(rows, AblationConfig(pairs=[claim]), "max", keys=keys)
    d = v.difference
    print(f"seeds 0-{seeds[-1]}: n={d.n} diff {d.mean:+.4f} [{d.low:+.4f}, {d.high:+.4f}] p {v.p:.2g} exact {v.p_exact:.3g} "
          f"wins {v.wins:g} of {d.n} d_z {d.effect:+.2f} -> {v.verdict} / {v.outcome}; notes: {v.notes}")
print(sorted((r["variant"], int(r["seed"]), r["train_error"]) for r in rows))
