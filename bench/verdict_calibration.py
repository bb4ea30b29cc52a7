"""How often the lab's verdicts are wrong: its own verdict code (`lab.verdicts.ablation.verdicts`, the
function every sweep report calls) run on simulated ablations whose truth is known.

Each scenario draws `--sims` ablations (10,000 by default): a baseline and a candidate network,
n seeds each, the candidate's error shifted by a true effect, with seed noise that is normal,
heavy-tailed (Student t, 3 degrees of freedom), or quantised to steps of 1/500 with a floor at 0
(the quick protocol's training error), or exactly one image apart on every seed, the side chosen
by a coin (the worst case for the verdicts' resolution floor); some with a candidate run that fails to train (error 0.9,
flagged, as the lab flags them). A failure rate that no seed shows cannot be seen by any rule: a
candidate failing on 20% of seeds shows no failure in 5 seeds 33% of the time (0.8^5); what the
benchmark measures is what the lab does with a failure it saw. For each scenario it counts how often the claim was
`reproduced` and `contradicted`, and which of those were false given the truth: a false
`reproduced` is a claim the truth does not support; a false `contradicted` is a claim that is
true. Power: `reproduced` when the claim is true. Every rate carries its Wilson 95% interval.

It also measures the family (the main job's four claims at once, Holm), and the sequential seed
plan (`lab.stats.seeds.look_levels`: looks at 3, 5 and 8 seeds) against a fixed 8: error rates
and the mean seeds it used.

    .venv/bin/python bench/verdict_calibration.py [--sims 10000] [--out results/cpu/verdict_calibration.json]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric  # noqa: E402
from lab.stats.seeds import look_levels  # noqa: E402
from lab.verdicts.ablation import CONTRADICTED, REPRODUCED, verdicts  # noqa: E402

STEP = 1 / 500  # the quick protocol's training error: one image in 500
SPREAD = 0.01  # seed-to-seed sd of a network's error (the quick protocol's ResNet-20: 0.0135 on test error);
# effects are named in units of it ("effect 2 sd": the candidate's error 0.02 higher)
MARGIN = 0.01
FAILED_ERROR = 0.9  # a run that did not train scores at chance


@dataclass(frozen=True)
class Scenario:
    name: str
    expect: Optional[str]  # "worse", "better", "not_worse"; the claim tested
    effect: float  # true candidate - baseline error (a failed run's cost comes on top)
    seeds: int
    # normal | heavy | quantised | swap (one image more on one side, at random)
    noise: str = "normal"
    level: float = 0.10  # the baseline's mean error
    spread: float = SPREAD
    failures: int = 0  # candidate runs (on random seeds) that fail to train
    margin: float = 0.0

    def true_difference(self) -> float:
        """The candidate's expected error minus the baseline's, its failure rate included."""
        rate = self.failures / self.seeds
        return (1 - rate) * (self.level + self.effect) + rate * FAILED_ERROR - self.level

    def truth(self) -> str:
        """ "true", "false" or "null" (a directional claim with no effect: neither it nor its opposite holds)."""
        d = self.true_difference()
        if self.expect == "not_worse":
            return "true" if d < self.margin - 1e-12 else "false"
        if abs(d) < 1e-12:
            return "null"
        return "true" if (d > 0) == (self.expect == "worse") else "false"


def noise(rng: np.random.Generator, kind: str, spread: float, size: int) -> np.ndarray:
    if kind == "heavy":
        return rng.standard_t(3, size) * spread / math.sqrt(3)  # t(3) has variance 3
    return rng.normal(0.0, spread, size)


def observe(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "quantised":
        return np.round(np.clip(values, 0.0, 1.0) / STEP) * STEP
    return values


def draw_rows(s: Scenario, rng: np.random.Generator) -> List[Dict[str, object]]:
    """One simulated ablation's trial rows. Seeds affect both networks alike in part (a shared
    data order): half the variance is shared, as paired seeds are in the lab's sweeps."""
    if s.noise == "swap":  # the resolution floor's worst case: every difference exactly one image
        coin = rng.integers(0, 2, s.seeds)
        return [
            r
            for seed in range(s.seeds)
            for r in (
                row("a", seed, s.level + STEP * coin[seed], ""),
                row("b", seed, s.level + s.effect + STEP * (1 - coin[seed]), ""),
            )
        ]
    shared = noise(rng, s.noise, s.spread * math.sqrt(0.5), s.seeds)
    base = observe(
        s.level + shared + noise(rng, s.noise, s.spread * math.sqrt(0.5), s.seeds), s.noise
    )
    cand = observe(
        s.level + s.effect + shared + noise(rng, s.noise, s.spread * math.sqrt(0.5), s.seeds),
        s.noise,
    )
    failed = np.zeros(s.seeds, dtype=bool)
    failed[rng.choice(s.seeds, size=s.failures, replace=False)] = True
    rows = []
    for seed in range(s.seeds):
        rows.append(row("a", seed, base[seed], ""))
        reason = "final training loss above chance" if failed[seed] else ""
        rows.append(row("b", seed, FAILED_ERROR if failed[seed] else cand[seed], reason))
    return rows


def row(variant: str, seed: int, error: float, not_trained: str) -> Dict[str, object]:
    return {
        "trial_id": f"{variant}{seed}",
        "status": "COMPLETED",
        "variant": variant,
        "seed": seed,
        "best_objective": 1 - error,
        "train_error": float(error),
        "train_examples": 500,
        "train_steps": 320,
        "not_trained": not_trained,
    }


def comparison(s: Scenario) -> ComparisonConfig:
    expect = Expectation(s.expect) if s.expect else None
    return ComparisonConfig("a", "b", Metric.train_error, expect, margin=s.margin)


@dataclass
class Rates:
    scenario: Dict[str, object]
    truth: str
    sims: int
    reproduced: float
    contradicted: float
    false_reproduced: float  # rate, with its Wilson interval below
    false_contradicted: float
    power: Optional[float]
    intervals: Dict[str, Tuple[float, float]] = field(default_factory=dict)
    mean_seeds: Optional[float] = None


def wilson(hits: int, n: int, z: float = 1.96) -> Tuple[float, float]:
    if not n:
        return (math.nan, math.nan)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rates(
    s: Scenario, outcomes: Sequence[str], seeds_used: Optional[Sequence[int]] = None
) -> Rates:
    n = len(outcomes)
    rep, con = sum(o == REPRODUCED for o in outcomes), sum(o == CONTRADICTED for o in outcomes)
    truth = s.truth()
    false_rep = rep if truth in ("false", "null") else 0
    false_con = con if truth in ("true", "null") else 0
    return Rates(
        asdict(s),
        truth,
        n,
        rep / n,
        con / n,
        false_rep / n,
        false_con / n,
        rep / n if truth == "true" else None,
        {
            "false_reproduced": wilson(false_rep, n),
            "false_contradicted": wilson(false_con, n),
            "reproduced": wilson(rep, n),
        },
        float(np.mean(seeds_used)) if seeds_used is not None else None,
    )


def run_fixed(s: Scenario, sims: int, seed: int) -> Rates:
    rng = np.random.default_rng(seed)
    cfg = AblationConfig(pairs=[comparison(s)])
    outcomes = [verdicts(draw_rows(s, rng), cfg, "max")[0].outcome for _ in range(sims)]
    return rates(s, outcomes)


def sequential_outcome(rows, cfg: AblationConfig, looks: Sequence[int]) -> Tuple[str, int]:
    """The sequential plan on one ablation: test at each look at its share of the level; stop at
    the first decided outcome (or the last look)."""
    for look, level in zip(looks, look_levels(looks)):
        [v] = verdicts(rows, cfg, "max", alpha=level, keys=[str(k) for k in range(look)])
        if v.outcome in (REPRODUCED, CONTRADICTED) or look == looks[-1]:
            return v.outcome, look
    raise AssertionError("unreachable")


def run_sequential(s: Scenario, sims: int, seed: int, looks: Sequence[int]) -> Rates:
    rng = np.random.default_rng(seed)
    cfg = AblationConfig(pairs=[comparison(s)])
    results = [sequential_outcome(draw_rows(s, rng), cfg, looks) for _ in range(sims)]
    named = Scenario(**{**asdict(s), "name": f"{s.name}, looks {'/'.join(map(str, looks))}"})
    return rates(named, [o for o, _ in results], [n for _, n in results])


FAMILY = [
    ("plain20", "plain56", "worse"),
    ("plain56", "resnet56", "better"),
    ("plain56", "resnet56", "better"),
    ("resnet20", "resnet56", "not_worse"),
]


def run_family(sims: int, seed: int, seeds: int = 5) -> Dict[str, object]:
    """The main job's four claims with every network equal (no effect anywhere; (c) exactly at
    its margin, its hardest false case): how often at least one claim is falsely reproduced."""
    rng = np.random.default_rng(seed)
    pairs = [
        ComparisonConfig(
            b, c, Metric.train_error, Expectation(e), margin=MARGIN if e == "not_worse" else 0.0
        )
        for b, c, e in FAMILY
    ]
    cfg = AblationConfig(pairs=pairs)
    shift = {"plain20": 0.0, "plain56": 0.0, "resnet20": 0.0, "resnet56": MARGIN}
    any_false = 0
    for _ in range(sims):
        shared = rng.normal(0, SPREAD * math.sqrt(0.5), seeds)
        rows = [
            row(name, k, 0.1 + delta + shared[k] + rng.normal(0, SPREAD * math.sqrt(0.5)), "")
            for name, delta in shift.items()
            for k in range(seeds)
        ]
        any_false += any(v.outcome == REPRODUCED for v in verdicts(rows, cfg, "max"))
    return {
        "claims": len(pairs),
        "seeds": seeds,
        "sims": sims,
        "familywise_false_reproduced": any_false / sims,
        "interval": wilson(any_false, sims),
    }


def scenarios() -> List[Scenario]:
    found = []
    for seeds in (2, 3, 5, 8):
        for noise_kind in ("normal", "heavy"):
            for effect, label in (
                (0.0, "no effect"),
                (0.5 * SPREAD, "effect 0.5 sd"),
                (2 * SPREAD, "effect 2 sd"),
            ):
                found.append(
                    Scenario(f"worse, {label}, {noise_kind}", "worse", effect, seeds, noise_kind)
                )
        found.append(
            Scenario(
                "worse, no effect, errors at 0 (1/500 steps)",
                "worse",
                0.0,
                seeds,
                "quantised",
                level=0.001,
                spread=0.002,
            )
        )
        found.append(
            Scenario(
                "worse, one image more, errors at 0 (1/500 steps)",
                "worse",
                STEP,
                seeds,
                "quantised",
                level=0.0,
                spread=0.0015,
            )
        )
        found.append(
            Scenario(
                "worse, no effect, one image either way", "worse", 0.0, seeds, "swap", level=0.0
            )
        )
        for effect, label in (
            (0.0, "equal"),
            (MARGIN, "at the margin"),
            (2 * MARGIN, "twice the margin"),
        ):
            found.append(Scenario(f"not_worse, {label}", "not_worse", effect, seeds, margin=MARGIN))
        found.append(
            Scenario(
                "not_worse, at the margin, heavy",
                "not_worse",
                MARGIN,
                seeds,
                "heavy",
                margin=MARGIN,
            )
        )
        found.append(
            Scenario(
                "not_worse, equal, errors at 0 (1/500 steps)",
                "not_worse",
                0.0,
                seeds,
                "quantised",
                level=0.0,
                spread=0.0015,
                margin=MARGIN,
            )
        )
        found.append(
            Scenario(
                "not_worse, candidate fails on one seed",
                "not_worse",
                0.0,
                seeds,
                failures=1,
                margin=MARGIN,
            )
        )
    return found


SEQUENTIAL = [
    Scenario("worse, no effect", "worse", 0.0, 8),
    Scenario("worse, effect 1 sd", "worse", SPREAD, 8),
    Scenario("worse, effect 3 sd", "worse", 3 * SPREAD, 8),
    Scenario("not_worse, at the margin", "not_worse", MARGIN, 8, margin=MARGIN),
    Scenario("not_worse, equal", "not_worse", 0.0, 8, margin=MARGIN),
]


def job(args) -> Rates:
    kind, scenario, sims, seed = args
    if kind == "fixed":
        return run_fixed(scenario, sims, seed)
    return run_sequential(scenario, sims, seed, (3, 5, 8))


def table(found: List[Rates]) -> List[str]:
    lines = [
        "| scenario | seeds | truth | reproduced | contradicted | false reproduced | false contradicted | power |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in found:
        s = r.scenario
        seeds = f"{r.mean_seeds:.2f} (mean)" if r.mean_seeds is not None else str(s["seeds"])
        power = "" if r.power is None else f"{r.power:.3f}"
        lines.append(
            f"| {s['name']} | {seeds} | {r.truth} | {r.reproduced:.3f} | {r.contradicted:.3f} | "
            f"{r.false_reproduced:.4f} | {r.false_contradicted:.4f} | {power} |"
        )
    return lines


def calibrate(
    sims: int,
    processes: int = 2,
    which: Optional[Sequence[Scenario]] = None,
    sequential: bool = True,
) -> Dict[str, object]:
    fixed = list(which if which is not None else scenarios())
    jobs = [("fixed", s, sims, i) for i, s in enumerate(fixed)]
    if sequential:
        jobs += [("sequential", s, sims, 1000 + i) for i, s in enumerate(SEQUENTIAL)]
        jobs += [("fixed", s, sims, 2000 + i) for i, s in enumerate(SEQUENTIAL)]
    with Pool(processes) as pool:
        found = pool.map(job, jobs)
    record = {"sims": sims, "fixed": [asdict(r) for r in found[: len(fixed)]]}
    if sequential:
        record["sequential"] = [asdict(r) for r in found[len(fixed) :]]
        record["family"] = run_family(sims, 3000)
    return record


def worst(record: Dict[str, object]) -> Dict[str, float]:
    every = record["fixed"] + record.get("sequential", [])
    return {
        "false_reproduced": max(r["false_reproduced"] for r in every),
        "false_contradicted": max(r["false_contradicted"] for r in every),
    }


def markdown(record: Dict[str, object]) -> List[str]:
    """The record as results/cpu/verdict_calibration.md: provenance, the fixed-seed scenarios, the
    sequential plan against a fixed 8, the family."""
    facts = ["machine", "backend", "git commit", "command"]
    lines = ["# How often the lab's verdicts are wrong", ""]
    lines += [f"- {key}: {record[key]}" for key in facts if key in record]
    lines += [
        f"- wall time: {record['wall_seconds']} s, on a day the 20M-addition reference loop took "
        f"{record['reference_loop_seconds']} s",
        f"- simulated ablations per scenario: {record['sims']:,}",
        f"- worst false rates over every scenario: {record['worst']}",
        "",
        "Rates are shares of the simulated ablations; every rate's Wilson 95% interval is in the JSON beside "
        "this file. Effects are in units of the seed-to-seed sd (1 point of error).",
        "",
        "## Fixed seeds",
        "",
    ]
    lines += table([Rates(**r) for r in record["fixed"]])
    lines += ["", "## Seeds as needed (looks at 3, 5, 8) against a fixed 8", ""]
    lines += table([Rates(**r) for r in record["sequential"]])
    family = record["family"]
    lines += [
        "",
        "## The family",
        "",
        f"The main job's 4 claims, no effect anywhere, (c) at its margin, "
        f"{family['seeds']} seeds: {family['familywise_false_reproduced']:.4f} of {family['sims']:,} ablations "
        "reproduced at least one false claim (Holm).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--out", default=str(PROJECT_ROOT / "results" / "cpu" / "verdict_calibration.json")
    )
    args = parser.parse_args()
    from lab import runtime

    started = time.perf_counter()
    record = calibrate(args.sims, args.processes)
    record.update(
        wall_seconds=round(time.perf_counter() - started, 1),
        worst=worst(record),
        reference_loop_seconds=runtime.reference_loop_seconds(),
        **runtime.provenance(),
    )
    lines = markdown(record)
    print("\n".join(lines))
    out = Path(args.out)
    runtime.write_measurement(record, out)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
