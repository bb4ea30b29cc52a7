"""Seeds added as they are needed (`search.ablation.looks`): the plan replayed on rows, its
config checks, and a real sweep whose oracle follows the plan."""

import csv
import io

import numpy as np
import pytest
from conftest import FAST_TRAIN, TINY_RESNET
from mlflow.tracking import MlflowClient

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric, run_config
from lab.errors import ConfigValueError
from lab.tasks.search.orchestration import search
from lab.verdicts.ablation import REPRODUCED
from lab.verdicts.looks import plan_looks


def row(variant, seed, error, status="COMPLETED"):
    return {
        "trial_id": f"{variant}{seed}",
        "status": status,
        "variant": variant,
        "seed": seed,
        "best_objective": 0.5,
        "train_error": error,
        "train_examples": 500,
        "train_steps": 320,
        "not_trained": "",
    }


def test_a_clear_claim_stops_at_the_first_look_and_an_open_one_gets_more_seeds():
    cfg = AblationConfig(
        pairs=[
            ComparisonConfig("a", "b", Metric.train_error, Expectation.worse),
            ComparisonConfig("a", "c", Metric.train_error, Expectation.worse),
        ],
        looks=[3, 5, 8],
    )
    truth, rng, rows, order = {"a": 0.10, "b": 0.50, "c": 0.10}, np.random.default_rng(0), [], []
    while True:  # run the cells the plan asks for, one at a time, as the oracle does
        plan = plan_looks(rows, cfg, "max", range(8))
        if plan.done:
            break
        variant, seed = plan.missing[0]
        order.append((variant, seed))
        rows.append(row(variant, int(seed), truth[variant] + rng.normal(0, 0.01)))
    assert order[:6] == [
        ("a", "0"),
        ("b", "0"),
        ("c", "0"),
        ("a", "1"),
        ("b", "1"),
        ("c", "1"),
    ]  # seeds first
    assert plan.decided_at == [3, 8] and plan.verdicts[0].outcome == REPRODUCED
    # no effect: tested at every look, never decided
    assert plan.verdicts[1].outcome == "inconclusive"
    assert len(rows) == 3 * 3 + 2 * 5  # b stopped at 3 seeds; a and c went on to 8
    assert plan.levels == pytest.approx([0.01, 0.015, 0.025])


def test_a_look_waits_for_its_running_cells_and_an_unfinished_plan_is_inconclusive():
    cfg = AblationConfig(
        pairs=[ComparisonConfig("a", "b", Metric.train_error, Expectation.worse)], looks=[2, 4]
    )
    rows = [
        row("a", 0, 0.1),
        row("b", 0, 0.5),
        row("a", 1, 0.11),
        row("b", 1, 0.0, status="RUNNING"),
    ]
    plan = plan_looks(rows, cfg, "max", [0, 1, 2, 3])
    assert plan.waiting and not plan.missing and not plan.done
    assert (
        plan.verdicts[0].outcome == "inconclusive"
        and "look 2 of 2/4 not complete" in plan.verdicts[0].notes[-1]
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("search.tuner=random", "a grid over variant x seed alone"),
        ("search.ablation.looks=[3,5,8]", "at most as many seeds"),
        ("search.ablation.looks=[3,2]", "increasing seed counts"),
    ],
)
def test_looks_are_checked_before_anything_runs(override, message):
    base = ["experiment=plain_vs_residual", "search.ablation.looks=[2,3]"]
    with pytest.raises(ConfigValueError, match=message):
        run_config(base + [override])


def test_a_sweep_with_looks_trains_the_cells_its_plan_asks_for(tracking, tmp_path):
    """A real grid over connectivity x 4 seeds with looks at 2 and 4: the oracle hands out the
    first look's cells seeds first, and the trials it ran are exactly those the plan replayed on
    trials.csv needs; the summary says where the plan stopped."""
    space = (
        "search.space=[{name: connectivity, path: model.connectivity, kind: choice, values: [plain, residual]},"
        " {name: seed, path: seed, kind: choice, values: [0, 1, 2, 3]}]"
    )
    ablation = [
        "search.ablation.axis=connectivity",
        "search.ablation.looks=[2,4]",
        "search.ablation.pairs=[{baseline: plain, candidate: residual, metric: train_error}]",
    ]
    overrides = [
        "experiment=plain_vs_residual",
        "data=synthetic",
        "data.train_size=64",
        "data.test_size=32",
        *TINY_RESNET,
        "train.epochs=1",
        "train.warmup_epochs=0",
        *FAST_TRAIN,
        space,
        *ablation,
        "search.name=looks",
        f"search.directory={tmp_path}/tuner",
        *tracking,
    ]
    result = search(run_config(overrides))
    client = MlflowClient(tracking.uri)
    rows = list(
        csv.DictReader(
            io.StringIO(open(client.download_artifacts(result.parent_run_id, "trials.csv")).read())
        )
    )
    assert [(r["connectivity"], r["seed"]) for r in rows[:4]] == [
        ("plain", "0"),
        ("residual", "0"),
        ("plain", "1"),
        ("residual", "1"),
    ]
    cfg = run_config(overrides).search.ablation
    plan = plan_looks(rows, cfg, "max", [0, 1, 2, 3])
    assert plan.done and not plan.missing and len(rows) == (4 if plan.decided_at == [2] else 8)
    summary = open(client.download_artifacts(result.parent_run_id, "summary.md")).read()
    assert (
        "Seeds as needed (`search.ablation.looks`)" in summary
        and f"Runs: {len(rows)}, against 8" in summary
    )
