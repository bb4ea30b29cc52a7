"""The finite test set's part of a test-error comparison.

Seeds vary the networks; the test set is one fixed sample of N images, the same for every run.
The spread over seeds therefore says nothing about how the difference would move on another
test set drawn from the same distribution: on 1,000 images one error rate has a binomial
standard error of about 1 point. Each run logs which test images it got right
(`encode_correct`); a comparison of test errors then adds the test set's sampling variance of
the mean difference, var_j(c_j) / N, where c_j is image j's difference in error (candidate -
baseline) averaged over the paired seeds: the variance of a mean over N images drawn
independently (the delta method for a two-level design, seeds x images). The seed spread already
holds part of the seed x image interaction, so the sum errs wide, not narrow;
tests/test_stats.py checks it against a two-level bootstrap."""

from __future__ import annotations

import base64
import math
from typing import Dict, Sequence

import numpy as np

CORRECT_ARTIFACT = "test_correct.json"  # per run: {"n": N, "bits": base64 of the packed booleans};
# on a sweep's parent: {trial id: that record} for every trial that logged one


def encode_correct(correct: Sequence[bool]) -> Dict[str, object]:
    """Which test images a run classified correctly, compactly (1 bit each: 125 bytes per 1,000).

    Example:
        >>> decode_correct(encode_correct([True, False, True]))
        array([ True, False,  True])
    """
    flags = np.asarray(correct, dtype=bool)
    return {
        "n": int(len(flags)),
        "bits": base64.b64encode(np.packbits(flags).tobytes()).decode("ascii"),
    }


def decode_correct(record: Dict[str, object]) -> np.ndarray:
    n = int(record["n"])
    packed = np.frombuffer(base64.b64decode(str(record["bits"])), dtype=np.uint8)
    return np.unpackbits(packed)[:n].astype(bool)


def decode_by_trial(records: Dict[str, Dict[str, object]]) -> Dict[str, np.ndarray]:
    """A sweep parent's `test_correct.json`, decoded: trial id -> correct flags."""
    return {trial: decode_correct(record) for trial, record in records.items()}


def error_se(error: float, n: int) -> float:
    """The binomial standard error of an error rate measured on n images."""
    if not n or not math.isfinite(error):
        return math.nan
    return math.sqrt(max(error * (1 - error), 0.0) / n)


def difference_variance(baseline: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> float:
    """The test set's sampling variance of the mean paired difference in error: `baseline[i]`
    and `candidate[i]` are seed i's correct-flags over the same N images. NaN when the runs
    were tested on different numbers of images (they are then not paired on images)."""
    if (
        not baseline
        or len(baseline) != len(candidate)
        or len({len(c) for c in [*baseline, *candidate]}) != 1
    ):
        return math.nan
    wrong_b = ~np.stack(baseline)
    wrong_c = ~np.stack(candidate)
    per_image = (wrong_c.astype(float) - wrong_b.astype(float)).mean(axis=0)
    n_images = per_image.size
    return float(per_image.var(ddof=1) / n_images) if n_images > 1 else math.nan
