"""The report's data: what `collect` reads from MLflow and every other module of `lab.report`
takes. Plain records of numbers and strings: nothing here imports MLflow, Keras or matplotlib."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from lab.config import AblationConfig, AxisSpec


@dataclass(frozen=True)
class RunRecord:
    """One training run (a `task=train` run, a sweep trial, an execution), as the report sees it.

    `left_out` is None for a run that is pooled, else why it is not (FAILED with its error,
    KILLED, pruned at epoch N, did not train: its reason, did not log the metric)."""

    run_id: str
    experiment: str  # MLflow experiment name
    status: str  # MLflow's: FINISHED, FAILED, KILLED, RUNNING
    spec_hash: str  # tag lab.spec_hash: what it trained
    variant: str  # model.name, plus the hp values that changed it (`resnet20 width=1.5`)
    family: str  # model.family: chain, resnet, inception, fractal
    data: str  # data.name
    seed: Optional[int]
    metric: Optional[float]  # the value of report.metric
    params: Optional[int]  # params_total
    macs: Optional[int]  # multiply-accumulates per example
    activation_bytes: Optional[int]  # forward activations per example, in bytes
    best_epoch: Optional[int]
    wall_seconds: Optional[
        float
    ]  # start to end (a continued Hyperband rung: with the rungs before it)
    epochs: Optional[int]  # epochs it trained
    epoch_seconds: Optional[float]  # its median epoch (metric epoch_seconds_median)
    device: str  # tag lab.device: "cpu", "gpu:NVIDIA H200"
    sweep: Optional[str] = None  # tag lab.search of its sweep, for a trial or execution
    left_out: Optional[str] = None
    started: int = 0  # start time, ms since the epoch
    # its `data.` and `train.` params but where and how it ran, sorted: what it trained under
    protocol: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PooledRow:
    """The runs of one spec hash that count, pooled over seeds. `std` is the sample standard
    deviation (n - 1); `low`/`high` the 95% Student-t interval of the mean; both nan for n = 1.
    Medians (best epoch, wall times) are over the pooled runs."""

    spec_hash: str
    variant: str
    family: str
    data: str
    params: Optional[int]
    macs: Optional[int]
    activation_bytes: Optional[int]
    n: int
    mean: float
    std: float
    low: float
    high: float
    best_epoch: Optional[float]
    wall_per_run: Optional[float]  # seconds
    wall_per_epoch: Optional[float]  # seconds
    devices: Tuple[str, ...]
    experiments: Tuple[str, ...]
    run_ids: Tuple[str, ...]
    protocol: Tuple[Tuple[str, str], ...] = ()  # RunRecord.protocol, the same for every seed

    @property
    def has_interval(self) -> bool:
        return not math.isnan(self.low)


@dataclass
class SweepRecord:
    """One sweep found in the store (its parent run): its axes, objective and trials.csv rows,
    as `lab.tasks.search.summary.trial_rows` wrote them (every value a string, as read back from CSV),
    and, for an ablation, its config and the verdicts recomputed from those rows."""

    experiment: str
    name: str  # search.name
    parent_run_id: str
    tuner: str  # grid, random, bayesian, hyperband
    objective: str
    direction: str  # "max" or "min"
    axes: List[AxisSpec]
    rows: List[Dict[str, str]]
    ablation: Optional[AblationConfig] = None
    verdicts: list = field(default_factory=list)  # [lab.verdicts.ablation.Verdict]


@dataclass(frozen=True)
class Importance:
    """How much one axis (or an interaction, `depth:connectivity`) mattered in one sweep. For a
    two-way analysis of variance: `statistic` is F, `p` its p-value, `share` the axis' share of
    the sum of squares. For a random-forest fit: `statistic` is the permutation importance (the
    mean drop in held-out R^2 when the axis is shuffled), `p` its permutation-null p-value, `share`
    its share of the total, `noise` what the same importance reaches on a shuffled objective."""

    axis: str
    statistic: float
    p: Optional[float]
    share: Optional[float]  # None for a per-seed contrast, which splits no sum of squares
    noise: Optional[float] = None  # forests only


@dataclass
class AxisImportance:
    """Which axes mattered in one sweep, by `method` (named in full in the report), with `limits`
    stated in one or two sentences. `skipped` says why there is no estimate (too few trials, one
    value per axis, not factorial ...), in which case `rows` is empty."""

    sweep: str
    experiment: str
    response: str  # the trials.csv column analysed: train_error, test_error, best_objective
    method: str
    rows: List[Importance] = field(default_factory=list)
    limits: str = ""
    skipped: Optional[str] = None

    @property
    def is_anova(self) -> bool:
        """An analysis of variance (F and p per axis), as opposed to a forest's importances."""
        return bool(self.rows) and all(row.noise is None for row in self.rows)


@dataclass
class Section:
    """One part of the report, rendered the same way into report.md and report.html: a heading,
    paragraphs of plain text, an optional table (`columns`, `rows` of cell strings) and figures
    (PNG file names in the report's folder)."""

    heading: str
    paragraphs: List[str] = field(default_factory=list)
    columns: List[str] = field(default_factory=list)
    rows: List[List[str]] = field(default_factory=list)
    figures: List[str] = field(default_factory=list)
