"""`task=report`'s Pareto fronts (`lab.tasks.report.pareto`): per data set and protocol, the
networks no other beats on both the metric and MACs, their hypervolume against hand arithmetic,
rows without MACs left out and counted, the section, report.csv's `on_pareto_front` and
pareto_front.png. Runs are logged as tests/test_report.py logs them."""

from __future__ import annotations

import csv
import math
import shutil

import pytest
from browser import PNG_SIGNATURE
from matplotlib.collections import PathCollection
from mlflow.tracking import MlflowClient
from test_report import log_run, logged, report_cfg

from lab.tasks.report.build import build_report, pareto_sections
from lab.tasks.report.collect import read_store
from lab.tasks.report.pareto import group_labels, pareto_groups
from lab.tasks.report.pareto_figure import pareto_plot, plt
from lab.tasks.report.pool import pooled_rows
from lab.tasks.report.records import PooledRow
from lab.tasks.report.sections import pareto_section
from lab.tracking.tags import DEVICE_TAG, SPEC_HASH_TAG, TRAINED_TAG

# (variant, MACs, params, test accuracy per seed), trained 4 epochs: `bloated` costs twice `big`'s
# MACs for less accuracy than `mid` and `big` give, so it is dominated; the others are not.
SHORT = [
    ("small", 1_000_000, 10_000, [0.79, 0.81]),
    ("mid", 2_000_000, 20_000, [0.85, 0.87]),
    ("big", 4_000_000, 50_000, [0.89, 0.91]),
    ("bloated", 8_000_000, 90_000, [0.84, 0.86]),
]
# Trained 30 epochs (another protocol, another front): two networks, one seed each.
LONG = [("small30", 1_000_000, 10_000, [0.80]), ("big30", 2_000_000, 20_000, [0.90])]
SHORT_LABEL = "fashion_mnist, train.epochs=4"
LONG_LABEL = "fashion_mnist, train.epochs=30"


@pytest.fixture
def store(tmp_path, empty_store):
    """The networks of SHORT and LONG, and `nomacs` (4 epochs, the best accuracy) without MACs."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("architectures")
    for networks, epochs in ((SHORT, "4"), (LONG, "30")):
        for variant, macs, params, accuracies in networks:
            for seed, accuracy in enumerate(accuracies):
                log_run(
                    client,
                    experiment,
                    f"hash-{variant}",
                    accuracy,
                    seed=seed,
                    variant=variant,
                    metrics={"macs": macs, "params_total": params},
                    params={"train.epochs": epochs},
                )
    logged(
        client,
        experiment,
        {SPEC_HASH_TAG: "hash-nomacs", DEVICE_TAG: "cpu", TRAINED_TAG: "true"},
        {"model.name": "nomacs", "model.family": "resnet", "data.name": "fashion_mnist"}
        | {"seed": "0", "train.epochs": "4"},
        {"test_accuracy": 0.95, "params_total": 5_000},
    )
    return uri


def groups_of(uri: str):
    collected = read_store(uri, None, None, "test_accuracy")
    return pareto_groups(pooled_rows(collected.runs, "test_accuracy"), "test_accuracy")


def test_each_protocol_has_its_own_front_without_the_dominated_network_or_the_one_without_macs(
    store,
):
    long, short = groups_of(store)
    assert (long.label, short.label) == (LONG_LABEL, SHORT_LABEL)
    assert short.directions == ("max", "min")
    assert [row.variant for row in short.front] == ["small", "mid", "big"]  # by MACs
    assert sorted(row.variant for row in short.rows) == ["big", "bloated", "mid", "small"]
    assert [row.variant for row in short.left_out] == ["nomacs"]
    # Two points, (0.80, 1M) and (0.90, 2M). Reference: accuracy 0.80 - 0.1 * 0.10 = 0.79, MACs
    # 2M + 0.1 * 1M = 2.1M. Rectangles 0.11 * 0.1M = 11,000 (big30) and 0.01 * 1.1M = 11,000
    # (small30), which share 0.01 * 0.1M = 1,000: 21,000.
    assert long.reference == pytest.approx([0.79, 2_100_000])
    assert long.hypervolume == pytest.approx(21_000)
    # Reference (0.79, 8M + 0.1 * 7M = 8.7M); by accuracy slices: 0.01 * 7.7M (up to small's
    # 0.80) + 0.06 * 6.7M (to mid's 0.86) + 0.04 * 4.7M (to big's 0.90) = 77k + 402k + 188k.
    assert short.reference == pytest.approx([0.79, 8_700_000])
    assert short.hypervolume == pytest.approx(667_000)


def section_of(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def first_cells(section: str) -> list:
    """The first column of a section's Markdown table, its header row left out."""
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]


def test_the_report_lists_each_front_by_macs_with_its_hypervolume_csv_column_and_figure(
    store, tmp_path
):
    folder = build_report(report_cfg(store, f"report.out={tmp_path / 'out'}")).folder
    text = (folder / "report.md").read_text()
    short, long = (
        section_of(text, f"Pareto front: {SHORT_LABEL}"),
        section_of(text, f"Pareto front: {LONG_LABEL}"),
    )
    assert first_cells(short) == ["small", "mid", "big"] and first_cells(long) == [
        "small30",
        "big30",
    ]
    assert "| small | 0.8000 ± 0.0141 | 2 | 1.00M | 10,000 |" in short  # std of 0.79, 0.81
    assert "| small30 | 0.8000 | 1 | 1.00M | 10,000 |" in long
    assert "3 of the 4 with both logged" in short
    assert "1 left out (no MACs or no test_accuracy logged): nomacs." in short
    assert "0 left out" in long
    assert (
        "Hypervolume: 21,000 (test_accuracy × MACs per example), the area the front dominates "
        "up to the reference point (test_accuracy = 0.79, MACs = 2.10M): "
        "lab.stats.pareto.default_reference"
    ) in long
    assert "![pareto_front.png](pareto_front.png)" in long  # the first group's section
    assert (folder / "pareto_front.png").read_bytes().startswith(PNG_SIGNATURE)
    assert f"Pareto front: {SHORT_LABEL}" in (folder / "report.html").read_text()
    with open(folder / "report.csv") as handle:
        table = {row["variant"]: row["on_pareto_front"] for row in csv.DictReader(handle)}
    assert table == {
        "small": "true",
        "mid": "true",
        "big": "true",
        "bloated": "false",
        "nomacs": "false",
        "small30": "true",
        "big30": "true",
    }


def test_the_figure_names_each_front_and_joins_it_by_a_step_line_over_grey_points(store):
    figure, labels = pareto_plot(groups_of(store), "test_accuracy")
    try:
        assert [[text.get_text() for text in panel] for panel in labels] == [
            ["small30", "big30"],
            ["small", "mid", "big"],
        ]
        ax = figure.axes[1]  # the 4-epoch panel
        [step] = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
        assert list(step.get_xdata()) == [1_000_000, 2_000_000, 4_000_000]
        assert list(step.get_ydata()) == pytest.approx([0.80, 0.86, 0.90])
        others, front = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert others.get_offsets().ravel().tolist() == pytest.approx([8_000_000, 0.85])
        assert len(front.get_offsets()) == 3 and ax.get_xscale() == "log"
    finally:
        plt.close(figure)


def pooled(variant: str, macs, mean: float, data: str = "cifar10") -> PooledRow:
    nan = math.nan
    return PooledRow(
        variant, variant, "resnet", data, 1_000, macs, None, 1, mean, nan, nan, nan, None, None,
        None, ("cpu",), ("e",), (variant,)
    )  # fmt: skip


def test_a_loss_is_minimised_and_its_hypervolume_is_the_hand_computed_one():
    rows = [pooled("a", 100, 0.5), pooled("b", 200, 0.3), pooled("c", 150, 0.6)]
    [group] = pareto_groups(rows, "test_loss")
    assert group.directions == ("min", "min")
    assert [row.variant for row in group.front] == ["a", "b"]  # c: more loss and MACs than a
    # Reference: loss 0.6 + 0.1 * 0.3 = 0.63, MACs 200 + 0.1 * 100 = 210. Rectangles
    # 0.13 * 110 (a) + 0.33 * 10 (b) - 0.13 * 10 (shared) = 14.3 + 3.3 - 1.3 = 16.3.
    assert group.reference == pytest.approx([0.63, 210])
    assert group.hypervolume == pytest.approx(16.3)


def test_a_group_of_fewer_than_two_networks_with_macs_is_not_measured_nor_drawn(tmp_path):
    [none] = pareto_groups([pooled("a", None, 0.9), pooled("b", 0, 0.8)], "test_accuracy")
    assert (none.front, none.hypervolume, len(none.left_out)) == ([], None, 2)
    [one] = pareto_groups([pooled("c", 100, 0.9), pooled("d", None, 0.95)], "test_accuracy")
    assert ([row.variant for row in one.front], one.hypervolume, one.compared) == (
        ["c"],
        None,
        False,
    )
    section = pareto_section(one, "test_accuracy", None)
    assert "Fewer than two networks with both logged" in section.paragraphs[-1]
    assert section.paragraphs[1] == "1 left out (no MACs or no test_accuracy logged): d."
    assert not any("Hypervolume" in paragraph for paragraph in section.paragraphs)
    sections, on_front = pareto_sections([pooled("c", 100, 0.9)], "test_accuracy", tmp_path)
    assert (len(sections), on_front, list(tmp_path.iterdir())) == (1, {"c"}, [])  # no figure


def test_groups_are_named_by_the_protocol_keys_that_tell_them_apart():
    four, thirty = (("train.epochs", "4"),), (("train.epochs", "30"), ("train.lr", "0.1"))
    labels = group_labels([("cifar10", four), ("cifar10", thirty), ("mnist", four)])
    assert list(labels.values()) == [
        "cifar10, train.epochs=4, train.lr=unset",
        "cifar10, train.epochs=30, train.lr=0.1",
        "mnist",
    ]


def test_a_protocol_is_what_was_trained_not_where_the_files_or_caches_were():
    from lab.tasks.report.collect import protocol_of

    here = {"data.name": "fashion_mnist", "data.source": "/usr/share/datasets/fashion-mnist"}
    there = {**here, "data.source": "/home/me/data", "data.root": "/home/me/data"}
    trained = {"train.epochs": "4", "train.verbose": "0", "train.jit_compile": "true"}
    assert protocol_of({**here, **trained}) == protocol_of({**there, **trained, "model.name": "x"})
    assert protocol_of({**here, **trained}) == (
        ("data.name", "fashion_mnist"),
        ("train.epochs", "4"),
    )
