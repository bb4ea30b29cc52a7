"""Every experiment in experiments/ composes, with and without `quick=true`, to what its file says:
each key it sets lands in the typed config, each default it overrides is chosen, and quick mode
changes exactly the keys its quick settings name (the experiment's and conf/ablation/grid.yaml's)."""

from pathlib import Path
from typing import Any, Dict

import pytest
from omegaconf import OmegaConf

from lab.config import CONF_DIR, PROJECT_ROOT, run_config
from lab.config.overrides import by_name, flatten

EXPERIMENTS = sorted((PROJECT_ROOT / "experiments").glob("*.yaml"))
CONF_GROUPS = ("model", "data", "ablation")


def typed_tree(cfg) -> Any:
    """A RunConfig as plain containers, enums as their names (as a YAML file would write them)."""
    return OmegaConf.structured(cfg)


def file_body(path: Path) -> Dict[str, Any]:
    """What a config file sets, less its defaults list, interpolations left as written."""
    body = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    body.pop("defaults", None)
    return body


def chosen_groups(path: Path) -> Dict[str, str]:
    """`- override /model: resnet56` and `- /ablation: grid` -> {"model": "resnet56", "ablation": "grid"}."""
    entries = OmegaConf.to_container(OmegaConf.load(path)).get("defaults", [])
    chosen = {}
    for entry in entries:
        if isinstance(entry, dict):
            [(key, value)] = entry.items()
            chosen[key.replace("override ", "").strip("/")] = value
    return chosen


def assert_lands(expected: Any, typed: Any, where: str) -> None:
    """Every key of `expected` (a file's values) is in `typed` (the composed config) with that
    value; records may hold more keys (their defaults). Interpolations are skipped here."""
    if isinstance(expected, str) and "${" in expected:
        return
    if isinstance(expected, dict):
        for key, value in expected.items():
            assert key in typed, f"{where}.{key} is not in the composed config"
            assert_lands(value, typed[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(typed), (
            f"{where}: {len(typed)} entries composed, {len(expected)} in the file"
        )
        for index, (value, node) in enumerate(zip(expected, typed)):
            assert_lands(value, node, f"{where}[{index}]")
    else:
        got = (
            typed.name
            if hasattr(typed, "name") and not isinstance(typed, (str, int, float))
            else typed
        )
        got = OmegaConf.to_container(typed, enum_to_str=True) if OmegaConf.is_config(typed) else got
        same = (
            got == expected
            if isinstance(expected, (int, float)) and not isinstance(expected, bool)
            else str(got) == str(expected)
        )
        assert same, f"{where}: composed {got!r}, the file says {expected!r}"


def quick_settings_of(path: Path) -> Dict[str, Any]:
    """The quick settings an experiment runs with: conf/ablation/grid.yaml's, then its own."""
    settings = {}
    if chosen_groups(path).get("ablation"):
        settings.update(
            file_body(CONF_DIR / "ablation" / f"{chosen_groups(path)['ablation']}.yaml")[
                "quick_settings"
            ]
        )
    settings.update(file_body(path).get("quick_settings", {}))
    return settings


def test_there_are_experiments_and_each_ablation_is_a_short_diff():
    assert len(EXPERIMENTS) >= 8
    for path in EXPERIMENTS:
        if "ablation" in chosen_groups(path):
            body = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
            starts = [i for i, line in enumerate(body) if line.startswith("quick_settings:")]
            quick = body[starts[0] :] if starts else []
            pairs = [
                line for line in body if line.lstrip().startswith("- {baseline:")
            ]  # one line each
            rest = len(body) - len(quick) - len(pairs)
            assert rest <= 15, (
                f"{path.name}: {rest} lines besides its {len(pairs)} comparisons and quick mode"
            )  # with its claim's budget


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_an_experiment_composes_to_what_its_file_says(path):
    cfg = run_config([f"experiment={path.stem}"])
    tree = typed_tree(cfg)
    body = {key: value for key, value in file_body(path).items() if key != "quick_settings"}
    assert_lands(body, tree, path.stem)
    groups = chosen_groups(path)
    for group in ("model", "data"):
        if group in groups:
            assert tree[group].name == groups[group], f"{path.stem}: {group} is not {groups[group]}"
    if "ablation" in groups:  # the shared base lands wherever the experiment does not set the key
        base = file_body(CONF_DIR / "ablation" / f"{groups['ablation']}.yaml")
        base.pop("quick_settings")
        mine = flatten(body)
        shared = {key: value for key, value in flatten(base).items() if key not in mine}
        for key, value in shared.items():
            assert_lands(
                value,
                OmegaConf.select(tree, key),
                f"{path.stem} (from {groups['ablation']}.yaml) {key}",
            )
        assert cfg.tracking.experiment == cfg.search.name  # one MLflow experiment per ablation


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_quick_mode_changes_exactly_its_quick_settings(path):
    settings = quick_settings_of(path)
    full, quick = (
        run_config([f"experiment={path.stem}"]),
        run_config([f"experiment={path.stem}", "quick=true"]),
    )
    full_tree, quick_tree = typed_tree(full), typed_tree(quick)
    assert quick.quick
    paths = {}
    for key, value in settings.items():
        canonical = by_name(quick_tree, key)
        paths[key] = canonical
        # `${search.name}_quick`: resolved against the full config
        if isinstance(value, str) and "${" in value:
            value = (
                OmegaConf.select(full_tree, value[2 : value.index("}")])
                + value[value.index("}") + 1 :]
            )
        assert_lands(value, OmegaConf.select(quick_tree, canonical), f"{path.stem} quick {key}")
    flat_full = flatten(OmegaConf.to_container(full_tree, enum_to_str=True))
    flat_quick = flatten(OmegaConf.to_container(quick_tree, enum_to_str=True))
    changed = {
        key
        for key in flat_full.keys() | flat_quick.keys()
        if flat_full.get(key) != flat_quick.get(key)
    }
    allowed = set(paths.values()) | {"quick", "quick_settings"}
    stray = {
        key for key in changed if not any(key == a or key.startswith(a + ".") for a in allowed)
    }
    assert not stray, (
        f"{path.stem}: quick mode changed {sorted(stray)}, which its quick settings do not name"
    )


def test_a_key_given_on_the_command_line_beats_the_quick_setting():
    cfg = run_config(
        [
            "experiment=plain_vs_residual",
            "quick=true",
            "train.epochs=2",
            "search.space.1.values=[7,8]",
        ]
    )
    assert cfg.train.epochs == 2 and cfg.search.space[1].values == [7, 8]
    assert cfg.data.downsample == 2  # the other quick settings still apply
