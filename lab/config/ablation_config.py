"""The schema of an ablation (`search.ablation`): the grid's axis and pairing, the comparisons it
reports, what each measures and the paper's claim it tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import List, Optional

from omegaconf import MISSING

from lab.errors import require


class Metric(Enum):
    """What a comparison measures, per run. Errors are 1 - accuracy. `train_*` are the final
    epoch's training figures (Keras' running mean over that epoch's batches, augmentation on, as
    in He et al.'s training curves): the degradation problem is about training error."""

    train_error = "train_error"
    train_loss = "train_loss"
    test_error = "test_error"
    test_loss = "test_loss"
    objective = "objective"  # the sweep's objective (search.objective, in its direction)


class Expectation(Enum):
    """What the paper claims of the candidate against the baseline on the comparison's metric."""

    better = "better"
    worse = "worse"
    not_worse = "not_worse"  # no worse than the baseline by more than `margin` (non-inferiority)
    same = "same"  # within `margin` of the baseline either way (equivalence, two one-sided tests)


@dataclass
class ComparisonConfig:
    """One comparison of an ablation: `candidate` against `baseline` (values of the ablation's
    axis) on `metric`, paired by seed. `expect` is the published claim it tests (null: report
    the verdict only); `claim` says it in one line."""

    baseline: str = MISSING
    candidate: str = MISSING
    metric: Metric = Metric.objective
    expect: Optional[Expectation] = None
    margin: float = 0.0  # not_worse / same: the largest difference that still counts as none, in the metric's units
    claim: str = ""
    # The fewest SGD steps the networks must have trained for this claim to be about them (null:
    # the ablation's `min_steps`). A budget belongs to a claim: a comparison without `expect`
    # is always judged on what it measured.
    min_steps: Optional[int] = None

    def __post_init__(self) -> None:
        require(self.margin >= 0, "search.ablation.pairs.margin", self.margin, ">= 0")
        require(
            self.expect not in (Expectation.not_worse, Expectation.same) or self.margin > 0,
            "search.ablation.pairs.margin",
            self.margin,
            f"> 0 for expect: {self.expect.value if self.expect else ''} "
            "(the largest difference that still counts as none)",
        )
        require(
            self.min_steps is None or self.min_steps >= 0,
            "search.ablation.pairs.min_steps",
            self.min_steps,
            ">= 0",
        )


@dataclass
class CurvesConfig:
    """The per-epoch error figure of an ablation: one line per value of the axis (mean over seeds),
    coloured by `colour_by` and dashed where `dash_by` is one of `dashed` (keys of a trial run's
    params or metrics, e.g. `depth`, `model.connectivity`; null: by the axis value)."""

    colour_by: Optional[str] = None
    dash_by: Optional[str] = None
    dashed: List[str] = field(default_factory=list)


@dataclass
class AblationConfig:
    """An ablation: a grid over the values of `axis` x `pair_by` (usually seeds). The report
    gives each value's figures (mean +- std over `pair_by`) and, for each comparison in `pairs`,
    the paired difference with a 95% t interval, a Holm-adjusted verdict and, where the
    comparison states what the paper found, whether the lab reproduced it. `source` names the
    paper and its figure or table, `claim` its finding in one line."""

    axis: str = "variant"
    pair_by: str = "seed"
    source: str = ""
    claim: str = ""
    pairs: List[ComparisonConfig] = field(default_factory=list)
    curves: CurvesConfig = field(default_factory=CurvesConfig)
    # The fewest SGD steps a network must have trained for the paper's claims to be about it (a
    # claim on fully trained networks needs the full protocol; a pair may state its own). A sweep
    # whose runs trained fewer shows its differences but draws no verdict on those claims
    # (`inconclusive at this budget`); comparisons without a claim are judged as measured.
    min_steps: int = 0
    # Seeds added as they are needed (null: every value of `pair_by`, as declared): the numbers of
    # seeds at which the claims are tested, e.g. [3, 5, 8]. After each look the comparisons still
    # undecided get the next seeds; the sweep stops once every claim is decided or the last look
    # is reached. The level is split over the looks (`lab.stats.seeds.look_levels`), so stopping
    # early does not inflate the error rate (bench/verdict_calibration.py measures it).
    looks: Optional[List[int]] = None

    def __post_init__(self) -> None:
        require(self.min_steps >= 0, "search.ablation.min_steps", self.min_steps, ">= 0")
        if self.looks is not None:
            require(
                len(self.looks) >= 1
                and self.looks[0] >= 2
                and all(a < b for a, b in zip(self.looks, self.looks[1:])),
                "search.ablation.looks",
                self.looks,
                "null or increasing seed counts from at least 2, e.g. [3, 5, 8]",
            )
