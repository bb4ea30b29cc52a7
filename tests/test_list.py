"""`task=list` filters: family and name select before anything is built, budgets and sort act on
the counted rows, bad values fail naming the key, and `list.trained` reads each variant's best
measured test accuracy from MLflow in one query. Cheap: only small variants are ever built."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from lab.config import PROJECT_ROOT, ListSort, ListTaskConfig, run_config
from lab.errors import ConfigValueError
from lab.models.variants import VariantSummary, load_variant, variant_family
from lab.tasks.list import in_order, listed_rows, nothing_matched, selected_names, within_budgets
from lab.tracking.measured import Measured, measured_variants


def listing(*overrides) -> ListTaskConfig:
    return run_config(["task=list", *overrides]).list


def row(name, params, macs, family="resnet") -> VariantSummary:
    return VariantSummary(name, family, [32, 32, 3], 10, params, macs)


@pytest.mark.parametrize(
    "overrides, names",
    [
        (["list.name=plain*"], ["plain110", "plain20", "plain32", "plain44", "plain56"]),
        (
            ["list.family=fractal"],
            ["fractalnet20", "fractalnet20_deepest", "fractalnet40", "fractalnet40_deepest"],
        ),
        (["list.family=inception", "list.name=*aux"], ["googlenet_small_aux"]),
        (["list.family=resnet", "list.name=wrn_16_?"], ["wrn_16_2", "wrn_16_8"]),
        (["list.family=resnet", "list.name=lenet*"], []),
    ],
)
def test_family_and_name_select_variants(overrides, names):
    assert selected_names(listing(*overrides)) == names


def test_a_variant_that_extends_another_has_its_family():
    """`wrn_16_8` extends `wrn_16_2`: the defaults list is followed, as composing would."""
    assert variant_family("wrn_16_8") == load_variant("wrn_16_8").family == "resnet"
    assert variant_family("lenet5") == load_variant("lenet5").family == "chain"


def test_only_the_selected_variants_are_built(monkeypatch):
    built = []
    monkeypatch.setattr(
        "lab.models.variants.summarize_variants", lambda names: built.append(names) or []
    )
    assert listed_rows(listing("list.name=lenet*")) == ([], 1)
    assert listed_rows(listing("list.name=no_such*")) == ([], 0)
    assert built == [["lenet5"]]  # nothing built for an empty selection (not every variant)


def test_budgets_and_sort_on_counted_rows():
    rows = [row("b", 300, 10), row("a", 200, 30), row("c", 100, 20)]
    assert [r.name for r in in_order(rows, ListSort.name)] == ["a", "b", "c"]
    assert [r.name for r in in_order(rows, ListSort.params)] == ["c", "a", "b"]
    assert [r.name for r in in_order(rows, ListSort.macs)] == ["b", "c", "a"]
    assert [
        r.name for r in within_budgets(rows, listing("list.max_params=250", "list.max_macs=25"))
    ] == ["c"]


def test_built_rows_filtered_by_params_in_order():
    """plain20 (~0.27M) and plain32 (~0.46M) are within 0.5M parameters; plain44 (~0.66M) is not."""
    rows, selected = listed_rows(
        listing("list.name='plain[2-4]?'", "list.max_params=500000", "list.sort=params")
    )
    assert selected == 3
    assert [r.name for r in rows] == ["plain20", "plain32"]
    assert rows[0].params < rows[1].params <= 500000 and rows[0].macs > 0


def test_nothing_matched_names_the_filters():
    assert (
        nothing_matched(listing("list.family=resnet", "list.name=lenet*"), 0)
        == "no variant matches list.family=resnet list.name=lenet*"
    )
    assert (
        nothing_matched(listing("list.name=lenet*", "list.max_params=1000"), 1)
        == "none of the 1 variant selected (list.name=lenet*) is within list.max_params=1000"
    )


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "list.family=nope",
            "list.family must be null or a registered family: one of chain, fractal, inception, resnet",
        ),
        ("list.max_params=0", "list.max_params must be null or > 0"),
        ("list.max_macs=-5", "list.max_macs must be null or > 0"),
        ("list.name=''", "list.name must be null or a glob"),
    ],
)
def test_bad_values_fail_naming_the_key(override, message):
    with pytest.raises(ConfigValueError, match=message):
        listing(override)


def test_unknown_sort_fails_naming_the_key():
    with pytest.raises(ConfigCompositionException, match="list.sort=size"):
        listing("list.sort=size")


def log_run(client, experiment, model, accuracy=None, trained=None, status="FINISHED"):
    tags = {"lab.model": model, **({"lab.trained": trained} if trained else {})}
    run = client.create_run(experiment, tags=tags)
    if accuracy is not None:
        client.log_metric(run.info.run_id, "test_accuracy", accuracy)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.fixture
def store(tmp_path):
    """A SQLite store, two experiments: lenet5's runs of which two count (best 0.95), resnet20's one."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    first, second = client.create_experiment("first"), client.create_experiment("second")
    log_run(client, first, "lenet5", 0.90, "true")
    best = log_run(client, second, "lenet5", 0.95)  # an older run, without lab.trained: counts
    log_run(client, first, "lenet5", 0.99, "false")  # did not train
    log_run(client, first, "lenet5", 0.98, "true", status="RUNNING")
    log_run(client, first, "lenet5", 0.97, "true", status="FAILED")
    log_run(client, first, "lenet5", None, "true")  # measured nothing
    resnet20 = log_run(client, second, "resnet20", 0.5, "true")
    return uri, best, resnet20


def test_trained_reads_best_count_and_run_in_one_query(store, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri, best, resnet20 = store
    queries = []
    search_runs = MlflowClient.search_runs
    monkeypatch.setattr(
        MlflowClient,
        "search_runs",
        lambda self, *a, **k: queries.append(a) or search_runs(self, *a, **k),
    )
    assert measured_variants(uri, ["lenet5", "resnet20", "plain20"]) == {
        "lenet5": Measured(0.95, 2, best),
        "resnet20": Measured(0.5, 1, resnet20),
    }
    assert len(queries) == 1


def test_trained_table(store, capsys):
    from lab.tasks.list import run as run_list

    uri, best, _ = store
    run_list(
        run_config(["task=list", "list.name=lenet*", "list.trained=true", f"tracking.uri={uri}"])
    )
    out = capsys.readouterr().out
    assert "lenet5" in out and "0.9500" in out and best in out and "resnet20" not in out
    line = next(line for line in out.splitlines() if "lenet5" in line)
    assert line.split("│")[-3].strip() == "2"  # runs


def test_a_variant_without_runs_shows_a_dash_and_no_store_is_created(tmp_path, capsys):
    from lab.tasks.list import run as run_list

    uri = f"sqlite:///{tmp_path / 'none.db'}"
    run_list(
        run_config(["task=list", "list.name=lenet*", "list.trained=true", f"tracking.uri={uri}"])
    )
    line = next(line for line in capsys.readouterr().out.splitlines() if "lenet5" in line)
    assert line.count("—") == 3
    assert not (tmp_path / "none.db").exists()


def test_trained_checks_a_remote_store_is_reachable():
    """Before any variant is built; without `list.trained` the store is not read, so not checked."""
    from lab.tasks.preflight import preflight
    from lab.tracking.server import TrackingUnreachableError, free_port

    uri = f"tracking.uri=http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingUnreachableError, match="tracking.uri=http://127.0.0.1"):
        preflight(run_config(["task=list", "list.trained=true", uri]))
    preflight(run_config(["task=list", uri]))


def test_run_py_rejects_a_bad_family_with_exit_2():
    """The entry point end to end, before anything loads (about 2 s; a listing that builds a
    variant takes over 15 s in a fresh process, most of it importing the framework)."""
    result = subprocess.run(
        [sys.executable, "run.py", "task=list", "list.family=nope"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        "list.family must be null or a registered family: one of chain, fractal, inception, resnet"
        in result.stderr
    )


def test_counted_rows_are_kept_so_the_next_listing_builds_nothing(tmp_path, monkeypatch):
    """Issue 29: `task=list` took minutes; a row counted once is read back while the variants'
    files and the model code are unchanged, and counted again when they change."""
    import lab.models.registry as registry
    import lab.models.variants as variants

    first = variants.summarize_variants(["lenet5"], cache=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("built although its row was kept")

    monkeypatch.setattr(registry, "build_model", no_build)
    assert variants.summarize_variants(["lenet5"], cache=tmp_path) == first
    monkeypatch.setattr(variants, "model_code_digest", lambda: "the code changed")
    with pytest.raises(AssertionError, match="built although"):
        variants.summarize_variants(["lenet5"], cache=tmp_path)
