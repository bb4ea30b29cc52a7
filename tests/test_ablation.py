"""Ablations: statistics by hand, quick settings, and the main job's quick mode for real."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from conftest import needs_fashion_mnist
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

from lab.config import (
    PROJECT_ROOT,
    AblationConfig,
    ComparisonConfig,
    Expectation,
    Metric,
    compose,
    run_config,
    to_run_config,
)
from lab.config.overrides import with_quick_settings
from lab.errors import ConfigValueError
from lab.stats.holm import holm
from lab.stats.testset import decode_by_trial
from lab.tasks.search.summary import ablation_markdown
from lab.training.trained import not_trained_reason
from lab.verdicts.ablation import needed_steps, paired_difference, value_stats, verdicts


def rows(table, column="best_objective"):
    return [
        {
            "trial_id": f"{v}-{s}",
            "status": "COMPLETED",
            "variant": v,
            "seed": s,
            "best_objective": o,
            column: o,
            "not_trained": "",
        }
        for v, s, o in table
    ]


TABLE = rows(
    [("a", 0, 0.50), ("a", 1, 0.60), ("a", 2, 0.70), ("b", 0, 0.60), ("b", 1, 0.80), ("b", 2, 1.00)]
)


def ablation(*pairs, **fields):
    return AblationConfig(pairs=list(pairs), **fields)


def test_mean_and_sample_std_per_value():
    stats = {s.value: s for s in value_stats(TABLE, "variant", ["best_objective"])}
    assert (stats["a"].n, stats["a"].mean["best_objective"], stats["a"].std["best_objective"]) == (
        3,
        pytest.approx(0.6),
        pytest.approx(0.1),
    )
    assert stats["b"].std["best_objective"] == pytest.approx(0.2)


def test_paired_difference_with_a_t_interval():
    # Differences by seed: 0.1, 0.2, 0.3 -> mean 0.2, sd 0.1; t(0.975, 2) = 4.3027; t = 0.2 / (0.1/sqrt 3) = 3.464.
    d = paired_difference(TABLE, AblationConfig(), "a", "b")
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (d.n, d.mean) == (3, pytest.approx(0.2))
    assert (d.low, d.high) == (
        pytest.approx(0.2 - half, abs=1e-5),
        pytest.approx(0.2 + half, abs=1e-5),
    )
    assert d.p == pytest.approx(0.07418, abs=1e-4)  # 2 * P(T_2 > 3.464)


def test_failed_untrained_and_unpaired_runs_are_left_out():
    table = TABLE + [
        {"status": "FAILED", "variant": "b", "seed": 3, "best_objective": "", "not_trained": ""}
    ]
    table += rows([("a", 4, 0.9)])  # no partner for seed 4
    table += [
        {**rows([("a", 5, 0.1)])[0], "not_trained": "final training loss 2.4 above chance"},
        *rows([("b", 5, 0.9)]),
    ]
    d = paired_difference(table, AblationConfig(), "a", "b")
    assert d.n == 3 and d.mean == pytest.approx(0.2)
    single = paired_difference(rows([("a", 0, 0.5), ("b", 0, 0.7)]), AblationConfig(), "a", "b")
    assert (
        single.n == 1
        and single.mean == pytest.approx(0.2)
        and math.isnan(single.low)
        and math.isnan(single.p)
    )


def test_holm_multiplies_the_ith_smallest_by_m_minus_i_plus_one_and_keeps_order():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def errors(table):
    return rows(table, column="train_error")


CLEAR = errors(
    [("shallow", s, 0.10 + 0.01 * s) for s in range(4)]
    + [("deep", s, 0.30 + 0.012 * s) for s in range(4)]
)


def test_verdicts_say_better_worse_or_no_difference_after_holm():
    cfg = ablation(
        ComparisonConfig("shallow", "deep", Metric.train_error, Expectation.worse),
        ComparisonConfig("deep", "shallow", Metric.train_error, Expectation.better),
        ComparisonConfig("deep", "shallow", Metric.train_error, Expectation.worse),
    )
    found = verdicts(CLEAR, cfg, "max")
    assert [v.verdict for v in found] == ["candidate worse", "candidate better", "candidate better"]
    assert [v.outcome for v in found] == ["reproduced", "reproduced", "contradicted"]
    assert all(v.p_holm >= v.difference.p for v in found)

    noisy = errors(
        [
            ("shallow", 0, 0.1),
            ("shallow", 1, 0.3),
            ("shallow", 2, 0.2),
            ("deep", 0, 0.2),
            ("deep", 1, 0.2),
            ("deep", 2, 0.25),
        ]
    )
    [v] = verdicts(
        noisy,
        ablation(ComparisonConfig("shallow", "deep", Metric.train_error, Expectation.worse)),
        "max",
    )
    assert (v.verdict, v.outcome) == ("no detectable difference", "inconclusive")


def test_holm_can_turn_a_nominal_difference_into_no_detectable_difference():
    # differences 0.05, 0.035, 0.065: t = 0.05 / (0.015 / sqrt 3) = 5.774, p = 2 P(T_2 > 5.774) = 0.0287.
    # Alone: 0.0287 < 0.05; among three comparisons (the others p = 1): 3 * 0.0287 > 0.05.
    table = errors(
        [
            ("a", 0, 0.10),
            ("a", 1, 0.12),
            ("a", 2, 0.11),
            ("b", 0, 0.15),
            ("b", 1, 0.155),
            ("b", 2, 0.175),
        ]
    )
    one = ComparisonConfig("a", "b", Metric.train_error)
    alone = verdicts(table, ablation(one), "max")[0]
    assert alone.verdict == "candidate worse" and alone.difference.p == pytest.approx(
        0.0287, abs=1e-3
    )
    among = verdicts(
        table,
        ablation(
            one,
            ComparisonConfig("a", "a", Metric.train_error),
            ComparisonConfig("b", "b", Metric.train_error),
        ),
        "max",
    )[0]
    assert among.verdict == "no detectable difference" and among.p_holm == pytest.approx(
        3 * alone.difference.p
    )


def test_not_worse_is_reproduced_only_when_the_interval_stays_within_the_margin():
    tight = errors(
        [("a", s, 0.10 + 0.01 * s) for s in range(3)]
        + [("b", s, 0.099 + 0.01 * s + 0.001 * (s % 2)) for s in range(3)]
    )
    claim = ComparisonConfig("a", "b", Metric.train_error, Expectation.not_worse, margin=0.01)
    assert verdicts(tight, ablation(claim), "max")[0].outcome == "reproduced"
    wide = errors(
        [("a", 0, 0.1), ("a", 1, 0.2), ("a", 2, 0.3), ("b", 0, 0.2), ("b", 1, 0.1), ("b", 2, 0.33)]
    )
    assert verdicts(wide, ablation(claim), "max")[0].outcome == "inconclusive"
    worse = errors(
        [("a", s, 0.10 + 0.01 * s) for s in range(3)]
        + [("b", s, 0.2 + 0.011 * s) for s in range(3)]
    )
    assert verdicts(worse, ablation(claim), "max")[0].outcome == "contradicted"


def test_a_budget_at_chance_gives_no_verdict():
    """Runs that did not train are left out: too few pairs is `inconclusive at this budget`."""
    table = [
        {**row, "not_trained": "final training loss 2.31 above chance ln(10) = 2.303"}
        for row in errors([("a", s, 0.9) for s in range(3)])
    ] + errors([("b", s, 0.2 + 0.01 * s) for s in range(3)])
    [v] = verdicts(
        table, ablation(ComparisonConfig("a", "b", Metric.train_error, Expectation.better)), "max"
    )
    assert (v.difference.n, v.verdict, v.outcome) == (
        0,
        "inconclusive at this budget",
        "inconclusive",
    )
    text = ablation_markdown(
        table,
        ablation(
            ComparisonConfig("a", "b", Metric.train_error, Expectation.better),
            source="Paper 2015, Fig. 1",
            claim="b trains better",
        ),
        "val_accuracy",
        "max",
    )
    assert "Source: Paper 2015, Fig. 1" in text and "> b trains better" in text
    assert "inconclusive at this budget" in text and "1 inconclusive" in text
    assert (
        "- trial a-0 (variant a, seed 0): final training loss 2.31 above chance ln(10) = 2.303"
        in text
    )


def test_the_objective_follows_the_sweeps_direction():
    table = rows(
        [("a", s, 0.5 + 0.01 * s) for s in range(3)] + [("b", s, 0.6 + 0.011 * s) for s in range(3)]
    )
    claim = ComparisonConfig("a", "b", Metric.objective, Expectation.better)
    assert verdicts(table, ablation(claim), "max")[0].verdict == "candidate better"
    assert verdicts(table, ablation(claim), "min")[0].verdict == "candidate worse"


def test_not_trained_means_non_finite_or_above_chance_loss():
    assert not_trained_reason({"loss": [2.0, 0.5]}, 10, 0.6) is None
    assert "above chance ln(10) = 2.303" in not_trained_reason({"loss": [2.2, 2.31]}, 10, 2.3)
    assert "non-finite training loss" in not_trained_reason({"loss": [1.0, float("nan")]}, 10, 1.0)
    assert "non-finite test loss" in not_trained_reason({"loss": [1.0, 0.4]}, 10, float("inf"))
    assert not_trained_reason({"loss": [0.69]}, 2, None) is None and not_trained_reason(
        {"loss": [0.7]}, 2, None
    )


def test_quick_mode_applies_the_experiments_quick_settings_unless_the_command_line_set_them():
    cfg = compose(
        [
            "experiment=plain_vs_residual",
            "quick=true",
            "train.epochs=7",
            "search.space.1.values=[3,4,5]",
        ]
    )
    quick = to_run_config(with_quick_settings(cfg))
    settings = cfg.quick_settings
    assert (quick.data.limit, quick.train.epochs, quick.search.name) == (
        settings["data.limit"],
        settings["train.epochs"],
        "plain_vs_residual_quick",
    )
    assert (
        quick.train.jit_compile is False
        and quick.quick_settings["search.name"] == "plain_vs_residual_quick"
    )
    mine = to_run_config(with_quick_settings(cfg, ["train.epochs", "search.space.1.values"]))
    assert (mine.train.epochs, mine.data.limit, mine.search.space[1].values) == (
        7,
        settings["data.limit"],
        [3, 4, 5],
    )
    full = to_run_config(with_quick_settings(compose(["experiment=plain_vs_residual"])))
    assert (full.data.limit, full.train.epochs, full.search.space[1].values) == (
        None,
        30,
        [0, 1, 2],
    )


def test_quick_settings_name_axes_so_reordering_the_space_changes_nothing():
    axes = [
        "{name: variant, path: model, kind: choice, values: [plain20, resnet20]}",
        "{name: seed, path: seed, kind: choice, values: [0, 1, 2]}",
    ]
    for space in (axes, axes[::-1]):
        cfg = compose(
            [
                "experiment=plain_vs_residual",
                "quick=true",
                "search.ablation.pairs=[]",
                f"search.space=[{','.join(space)}]",
            ]
        )
        with open_dict(cfg):
            cfg.quick_settings["search.space.seed.values"] = [7, 8]
        quick = to_run_config(with_quick_settings(cfg)).search.space
        assert {a.name: a.values for a in quick} == {
            "variant": ["plain20", "resnet20"],
            "seed": [7, 8],
        }
    with open_dict(cfg):
        cfg.quick_settings["search.space.sede.values"] = [1]
    with pytest.raises(ConfigValueError, match="no entry named 'sede'"):
        with_quick_settings(cfg)


def test_rows_carry_axis_values_as_declared_not_as_keras_tuner_stores_them():
    from lab.config import AxisSpec
    from lab.tasks.search.summary import declared

    preact = AxisSpec(name="preact", path="model.preact", values=[False, True])
    assert declared(preact, 0) is False and declared(preact, 1) is True  # keras-tuner stores 0/1
    assert (
        declared(AxisSpec(name="v", path="model", values=["plain20", "resnet20"]), "resnet20")
        == "resnet20"
    )
    assert declared(AxisSpec(name="b", path="model.stages.*.blocks", values=[1, 3]), 3) == 3


@pytest.mark.slow
@needs_fashion_mnist
def test_main_job_trains_its_networks_and_reproduces_a_b_and_c(tmp_path):
    """`python run.py` as a new user runs it (the main job's quick mode, about 6 minutes on 2
    cores): every network trains, and (a), (b) and (c) come out `reproduced` from the MLflow records."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    command = [
        sys.executable,
        "run.py",
        "experiment=plain_vs_residual",
        "quick=true",
        f"tracking.uri={uri}",
        f"search.directory={tmp_path}/tuner",
        "train.verbose=0",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    check_main_job_record(result.stdout, uri, "plain_vs_residual_quick", seeds=(0, 1, 2, 3, 4))
    check_main_job_report(uri, tmp_path / "report")
    # Run again: reported from the records, the same verdicts, nothing trained (issue 29).
    again = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "had FINISHED: its report, from the records (nothing was changed)" in again.stdout
    assert comparison_rows(again.stdout) == comparison_rows(result.stdout)


def comparison_rows(stdout: str) -> List[str]:
    return [
        line
        for line in stdout.split("### Comparisons", 1)[1].splitlines()
        if line.startswith("| (")
    ]


def check_main_job_report(uri: str, out: Path) -> None:
    """`task=report` over the main job's record: its four networks pooled over the five seeds, the
    verdicts it recomputes from trials.csv reproduced, and the degradation problem found where He
    et al. put it: in the interaction of depth and connectivity on training error."""
    result = subprocess.run(
        [sys.executable, "run.py", "task=report", f"tracking.uri={uri}", f"report.out={out}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "report.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((row["variant"], row["n"]) for row in rows) == [
        (v, "5") for v in ("plain20", "plain56", "resnet20", "resnet56")
    ]
    text = (out / "report.md").read_text()
    verdict_rows = [line for line in text.splitlines() if line.startswith("| (")]
    assert len(verdict_rows) == 4 and all(
        line.rstrip(" |").endswith("reproduced") for line in verdict_rows
    )
    train_error = text.split("## Which axes mattered: plain_vs_residual_quick (train_error)", 1)[
        1
    ].split("## ", 1)[0]
    [interaction] = [
        line for line in train_error.splitlines() if line.startswith("| depth:connectivity |")
    ]
    assert float(interaction.split("|")[3]) < 0.05, train_error


def printed_comparison(stdout: str, claim: str) -> List[str]:
    """The cells of the printed comparison row whose claim is `claim`."""
    table = stdout.split("### Comparisons", 1)[1]
    [row] = [line for line in table.splitlines() if line.startswith(f"| {claim} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


def check_main_job_record(stdout: str, uri: str, sweep: str, seeds) -> None:
    """Every network trained; the verdicts recomputed from the MLflow records are the printed ones;
    the differences point the paper's way for (a) and (b) by a wide margin; and every claim comes
    out `reproduced` (an earlier quick mode called ResNet-56 significantly worse than ResNet-20)."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("plain_vs_residual").experiment_id
    [parent] = client.search_runs(
        [experiment], f"tags.`lab.role` = 'parent' and tags.`lab.search` = '{sweep}'"
    )
    children = client.search_runs([experiment], f"tags.`lab.parent` = '{parent.info.run_id}'")
    variants = ("plain20", "resnet20", "plain56", "resnet56")
    cells = sorted((c.data.params["model.name"], int(c.data.params["seed"])) for c in children)
    assert cells == sorted((v, s) for v in variants for s in seeds)
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["lab.trained"] for c in children} == {"true"}  # every network trained

    # The verdicts, recomputed from the runs' own metrics (not from the report).
    table = [
        {
            "trial_id": c.data.tags["lab.trial"],
            "status": "COMPLETED",
            "variant": c.data.params["model.name"],
            "seed": c.data.params["seed"],
            "best_objective": c.data.metrics["best_val_accuracy"],
            "not_trained": "",
            "train_error": 1 - c.data.metrics["accuracy"],
            "test_error": 1 - c.data.metrics["test_accuracy"],
            "train_steps": c.data.metrics["train_steps"],
            "train_examples": c.data.params["data.train_examples"],
            "test_examples": c.data.params["data.test_examples"],
        }
        for c in children
    ]
    correct = decode_by_trial(
        json.loads(open(client.download_artifacts(parent.info.run_id, "test_correct.json")).read())
    )
    cfg = run_config(["experiment=plain_vs_residual"]).search.ablation
    degradation, fixed, fixed_test, deep_residual = found = verdicts(table, cfg, "max", correct)
    assert (
        degradation.difference.mean > 0.1
        and fixed.difference.mean < -0.1
        and fixed_test.difference.mean < -0.1
    )
    # (a), (b) and (c), each reproduced: (a) and (b) with intervals excluding zero after Holm, (c)
    # with the interval's worse end inside its margin (its p, against the margin, in Holm's family).
    assert [v.outcome for v in found] == ["reproduced"] * 4, [
        (v.comparison.claim, v.verdict) for v in found
    ]
    assert (
        degradation.difference.low > 0
        and fixed.difference.high < 0
        and fixed_test.difference.high < 0
    )
    assert deep_residual.difference.high <= deep_residual.comparison.margin
    for v in found:
        row = printed_comparison(stdout, v.comparison.claim)
        low, high = (float(x) for x in row[6].strip("[]").split(","))
        assert row[1:4] == [
            v.comparison.baseline,
            v.comparison.candidate,
            v.comparison.metric.value,
        ]
        assert (float(row[5]), low, high, float(row[9])) == pytest.approx(
            (v.difference.mean, v.difference.low, v.difference.high, v.p_holm), abs=5e-4
        )  # the report rounds to 6 places
        assert (
            row[10] == v.verdict
            and row[12] == v.outcome
            and float(row[13]) == pytest.approx(v.p_exact, abs=1e-4)
        )
    assert fixed_test.difference.test_se > 0  # the test set's noise is in (b)'s test-error interval
    assert deep_residual.verdict == "within margin" and "p (Holm)" in stdout and "exact p" in stdout
    assert "test error SE" in stdout and "the exact test's smallest p is 0.0625" in stdout

    # What the user reads: the claim, the outcome line, the figure.
    assert "He et al. 2015" in stdout and "Claims tested: 4;" in stdout and "Quick mode:" in stdout
    assert "error curves (training and validation error per epoch): " in stdout
    summary = open(client.download_artifacts(parent.info.run_id, "summary.md")).read()
    assert "(quick mode)" in summary and "Holm" in summary and "- backend: tensorflow" in summary
    assert "error_curves.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_a_claim_on_longer_training_than_the_runs_had_gets_no_verdict():
    """`search.ablation.min_steps`: differences are shown, but a sweep shorter than the claim needs
    is `inconclusive at this budget`, however clear its difference."""
    clear = errors(
        [("a", s, 0.10 + 0.01 * s) for s in range(3)]
        + [("b", s, 0.3 + 0.011 * s) for s in range(3)]
    )
    claim = ComparisonConfig("a", "b", Metric.train_error, Expectation.better)
    for steps, verdict, outcome in (
        (338, "inconclusive at this budget", "inconclusive"),
        (12000, "candidate worse", "contradicted"),
    ):
        table = [{**row, "train_steps": steps} for row in clear]
        [v] = verdicts(table, ablation(claim, min_steps=12000), "max")
        assert (v.verdict, v.outcome) == (verdict, outcome) and v.difference.mean == pytest.approx(
            0.201, abs=1e-4
        )
    short = ablation_markdown(
        [{**row, "train_steps": 338} for row in clear],
        ablation(claim, min_steps=12000),
        "val_accuracy",
        "max",
    )
    assert (
        "the shortest-trained network took 338 SGD steps" in short
        and "at least 12,000 steps" in short
    )
    assert "| +0.2010 |" in short  # the measured difference is still reported
    [unknown] = verdicts(clear, ablation(claim, min_steps=12000), "max")  # no run logged its steps
    assert unknown.verdict == "inconclusive at this budget"
    # min_steps 0: no budget rule
    assert verdicts(clear, ablation(claim), "max")[0].verdict == "candidate worse"


def test_every_ablation_states_the_budget_its_claim_needs():
    """The full protocol (30 epochs of 54,000 images at batch 128) meets every claim's min_steps;
    each quick mode either meets it or is inconclusive by design."""
    for path in sorted((PROJECT_ROOT / "experiments").glob("*.yaml")):
        cfg = run_config([f"experiment={path.stem}"])
        if cfg.search.ablation is None or not cfg.search.ablation.pairs:
            continue
        full_steps = cfg.train.epochs * math.ceil(54_000 / cfg.train.batch_size)
        claimed = [c for c in cfg.search.ablation.pairs if c.expect is not None]
        if not claimed:  # judged on what it measured: no budget to meet
            assert all(
                needed_steps(c, cfg.search.ablation) == 0 for c in cfg.search.ablation.pairs
            ), path.stem
            continue
        assert 0 < max(needed_steps(c, cfg.search.ablation) for c in claimed) <= full_steps, (
            path.stem
        )
