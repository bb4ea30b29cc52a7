"""A sweep read back from its parent run: the `search:` section of its config.yaml (typed again,
so an ablation's pairs and claim are the ones it ran with) and its trials.csv. An ablation's
verdicts are recomputed from those rows by the same code that printed them at the sweep's end
(`lab.verdicts.looks.judged`), so the report and the sweep's summary.md cannot disagree."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from omegaconf import OmegaConf

from lab.config import SearchConfig
from lab.stats.testset import CORRECT_ARTIFACT, decode_by_trial
from lab.tasks.report.records import SweepRecord
from lab.tracking.tags import SEARCH_TAG


def csv_rows(text: str) -> List[Dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def artifact_text(client, run_id: str, path: str) -> Optional[str]:
    """An artifact of a run as text, None when the run has none by that name."""
    names = {artifact.path for artifact in client.list_artifacts(run_id)}
    if path not in names:
        return None
    with tempfile.TemporaryDirectory() as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_text()


def search_config(config_yaml: str) -> SearchConfig:
    """The typed `search:` section of a run's config.yaml."""
    recorded = OmegaConf.create(config_yaml).get("search")
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(SearchConfig), recorded))


def sweep_record(client, parent, experiment: str) -> Tuple[Optional[SweepRecord], Optional[str]]:
    """(the sweep, None), or (None, why it cannot be reported: not finished, or recorded by a lab
    whose config this one cannot read)."""
    from lab.verdicts.looks import judged

    name, run_id = parent.data.tags.get(SEARCH_TAG, "?"), parent.info.run_id
    trials, config = (
        artifact_text(client, run_id, "trials.csv"),
        artifact_text(client, run_id, "config.yaml"),
    )
    missing = [
        artifact
        for artifact, text in (("trials.csv", trials), ("config.yaml", config))
        if text is None
    ]
    if missing:
        return None, (
            f"sweep {name} ({experiment}, run {run_id}): no {' or '.join(missing)} (a sweep writes trials.csv "
            "when it reports: still running, or stopped before)"
        )
    try:
        search = search_config(config)
    except Exception as error:
        return (
            None,
            f"sweep {name} ({experiment}, run {run_id}): its config.yaml does not read as this lab's: {error}",
        )
    rows = csv_rows(trials)
    sweep = SweepRecord(
        experiment=experiment,
        name=name,
        parent_run_id=run_id,
        tuner=search.tuner.value,
        objective=search.objective,
        direction=search.direction,
        axes=list(search.space),
        rows=rows,
        ablation=search.ablation,
    )
    if search.ablation is not None:
        correct = artifact_text(client, run_id, CORRECT_ARTIFACT)
        flags = decode_by_trial(json.loads(correct)) if correct else None
        pairing = next(
            (axis for axis in search.space if axis.name == search.ablation.pair_by), None
        )
        sweep.verdicts, _ = judged(
            rows, search.ablation, search.direction, pairing.values if pairing else None, flags
        )
    return sweep, None
