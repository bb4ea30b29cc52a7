"""The report's figures and its self-contained page, from records built by hand: no training, no
MLflow. tests/test_report.py opens a whole report.html in headless Chromium."""

import base64
import itertools
import math
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import PNG_SIGNATURE
from matplotlib.collections import PathCollection

from lab.config import AblationConfig, ComparisonConfig, Expectation, Metric
from lab.stats.paired import summarise
from lab.tasks.report import figures
from lab.tasks.report.page import render_html, write_html
from lab.tasks.report.records import PooledRow, Section, SweepRecord
from lab.verdicts.ablation import BETTER, INCONCLUSIVE, REPRODUCED, SAME, UNDECIDED, Verdict

MiB = 2**20
NAN = math.nan


def pooled(variant, family, macs, activations, n, mean, wall=300.0) -> PooledRow:
    params = activations // 12  # any amount that differs from row to row
    low, high = (NAN, NAN) if n == 1 else (mean - 0.01, mean + 0.01)
    return PooledRow(
        variant,
        variant,
        family,
        "cifar10",
        params,
        macs,
        activations,
        n,
        mean,
        NAN if n == 1 else 0.008,
        low,
        high,
        9.0,
        wall,
        wall and wall / 10,
        ("cpu",),
        ("e",),
        tuple(f"{variant}-{seed}" for seed in range(n)),
    )


# Two families; resnet56 has one seed (no interval), inception-small no MACs, plain56 no wall time.
ROWS = [
    pooled("resnet20", "resnet", 41_000_000, 3 * MiB, 3, 0.91),
    pooled("resnet20 width=1.5", "resnet", 90_000_000, 6 * MiB, 3, 0.92),
    pooled("resnet56", "resnet", 125_000_000, 8 * MiB, 1, 0.93),
    pooled("plain20", "chain", 40_000_000, 3 * MiB, 3, 0.89),
    pooled("plain56", "chain", 124_000_000, 8 * MiB, 2, 0.86, wall=None),
    pooled("inception-small", "inception", None, 2 * MiB, 3, 0.90),
]
# Ten networks within 10% of one another on both axes, and two far off that squeeze them into a
# corner of the axes: their labels collide unless placed.
CROWD = [
    *(
        pooled(
            f"resnet{20 + 6 * i} width={1 + i / 2}",
            ("resnet", "chain")[i % 2],
            int(40e6 * (1 + 0.01 * i)),
            MiB * (1 + i % 3),
            3,
            0.9 + 0.004 * (i % 4),
        )
        for i in range(10)
    ),
    pooled("wide", "resnet", 900_000_000, 9 * MiB, 3, 0.95),
    pooled("tiny", "chain", 4_000_000, MiB, 3, 0.7),
]


def png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def assert_sensible_png(path: Path) -> None:
    width, height = png_size(path)
    assert 600 <= width <= 3000 and 300 <= height <= 2500, f"{path.name}: {width}x{height} px"


def label_boxes(texts) -> list:
    renderer = texts[0].figure.canvas.get_renderer()
    return [text.get_window_extent(renderer) for text in texts]


def scatter_sizes(ax) -> list:
    return list(next(c for c in ax.collections if isinstance(c, PathCollection)).get_sizes())


@pytest.mark.parametrize("size", ["activations", "params"])
def test_cost_figure_leaves_out_rows_without_macs_and_sizes_circles_by_area(tmp_path, size):
    path = figures.cost_figure(ROWS, "test_accuracy", size, tmp_path / "cost.png")
    assert path == tmp_path / "cost.png"
    assert_sensible_png(path)
    figure, texts = figures.cost_plot(ROWS, "test_accuracy", size)
    ax = figure.axes[0]
    shown = [r for r in ROWS if r.macs is not None]
    assert [t.get_text() for t in texts] == [r.variant for r in shown]
    assert "Left out, no MACs logged: inception-small." in figure.texts[0].get_text()
    assert "No error bar (one seed, no interval): resnet56." in figure.texts[0].get_text()
    assert len(ax.containers) == sum(r.has_interval for r in shown)  # one error bar per interval
    amounts = [r.activation_bytes if size == "activations" else r.params for r in shown]
    sizes = scatter_sizes(ax)
    assert sizes == pytest.approx([figures.LARGEST_AREA * a / max(amounts) for a in amounts])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    wanted = (
        [
            "5 MiB of activations per example",
            "1 MiB of activations per example",
            "200 KiB of activations per example",
        ]
        if size == "activations"
        else ["500K parameters", "100K parameters", "20K parameters"]
    )
    assert legend == wanted
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "MACs per example (log scale)"
    assert ax.get_ylabel() == "test_accuracy (mean over seeds)"
    assert "Canziani et al. 2016" in ax.get_title()
    figures.plt.close(figure)


def test_cost_figure_labels_of_a_crowd_overlap_neither_one_another_nor_the_frame():
    figure, texts = figures.cost_plot(CROWD, "test_accuracy", "activations")
    boxes = label_boxes(texts)
    overlapping = [
        (texts[i].get_text(), texts[j].get_text())
        for i, j in itertools.combinations(range(len(boxes)), 2)
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlapping == []
    frame = figure.axes[0].get_window_extent(figure.canvas.get_renderer())
    assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes)
    assert len(texts) == len(CROWD)
    figures.plt.close(figure)


def test_wall_time_figure_leaves_out_rows_without_wall_time(tmp_path):
    assert_sensible_png(figures.wall_time_figure(ROWS, "test_accuracy", tmp_path / "wall.png"))
    figure, texts = figures.wall_time_plot(ROWS, "test_accuracy")
    assert [t.get_text() for t in texts] == [r.variant for r in ROWS if r.wall_per_run]
    assert "Left out, no wall time logged: plain56." in figure.texts[0].get_text()
    assert "Zagoruyko & Komodakis 2016" in figure.axes[0].get_title()
    assert figure.axes[0].get_xlabel().endswith("(log scale)")
    ticks = figures.CompactLogFormatter(" s")
    ticks.set_axis(figure.axes[0].xaxis)
    assert [ticks(x) for x in (100, 300, 1000)] == ["100 s", "300 s", "1k s"]  # not 10^2, 3x10^2
    figures.plt.close(figure)


def test_figures_of_nothing_say_so(tmp_path):
    figure, texts = figures.cost_plot([], "test_accuracy", "params")
    assert texts == [] and figure.axes[0].texts[0].get_text() == "no run to show"
    figures.plt.close(figure)
    assert_sensible_png(figures.wall_time_figure([], "test_accuracy", tmp_path / "wall.png"))


def ablation_sweep() -> SweepRecord:
    """Three comparisons: reproduced, a single pair (no interval), and one without a stated claim."""
    compare = [
        ComparisonConfig("plain20", "resnet20", Metric.train_error, Expectation.better),
        ComparisonConfig("plain20", "plain56", Metric.train_error, Expectation.worse),
        ComparisonConfig("resnet20", "resnet56", Metric.test_error),
    ]
    # (the differences -0.03, -0.02, -0.01 give mean -0.02 with the interval [-0.0448, +0.0048])
    verdicts = [
        Verdict(
            compare[0], summarise([-0.03, -0.02, -0.01]), 0.004, 0.012, 0.25, BETTER, REPRODUCED
        ),
        Verdict(compare[1], summarise([0.03]), NAN, 1.0, NAN, UNDECIDED, INCONCLUSIVE),
        Verdict(compare[2], summarise([-0.02, -0.004, 0.012]), 0.4, 0.8, 1.0, SAME, None),
    ]
    cfg = AblationConfig(
        source="He et al. 2016, Fig. 6", claim="Deeper plain nets train worse.", pairs=compare
    )
    return SweepRecord(
        "ablations", "degradation", "parent", "grid", "val_accuracy", "max", [], [], cfg, verdicts
    )


def test_forest_figure_draws_one_line_per_comparison_with_its_verdict(tmp_path):
    sweep = ablation_sweep()
    assert_sensible_png(figures.forest_figure(sweep, tmp_path / "forest.png"))
    figure, notes = figures.forest_plot(sweep)
    ax = figure.axes[0]
    labels = sorted(ax.get_yticklabels(), key=lambda label: -label.get_position()[1])  # top first
    assert [label.get_text() for label in labels] == [
        "resnet20 − plain20 (train_error)",
        "plain56 − plain20 (train_error)",
        "resnet56 − resnet20 (test_error)",
    ]
    assert notes == [
        "candidate better; reproduced\n3 pairs, Holm p = 0.012, exact p = 0.25",
        "inconclusive at this budget; inconclusive\n1 pair, Holm p = 1; no interval",
        "no detectable difference\n3 pairs, Holm p = 0.8, exact p = 1",
    ]
    assert [t.get_text() for t in ax.texts] == notes
    assert len(ax.collections) == 2  # intervals: none for the single pair
    assert ax.get_title().startswith("degradation: He et al. 2016, Fig. 6")
    assert ax.get_xlim()[0] < -0.03 and ax.get_xlim()[1] > 0.03  # every point and zero in view
    figures.plt.close(figure)


SECTIONS = [
    Section(
        "Pooled runs",
        ["Means over seeds <b>& intervals</b>."],
        ["variant", "n", "test_accuracy", "95% interval"],
        [
            ["resnet20", "3", "0.912", "[0.90, 0.93]"],
            ["plain20", "3", "0.890", "[0.87, 0.91]"],
            ["resnet56", "1", "0.930", "nan"],
        ],
        ["cost.png"],
    ),
    Section("Ablation: degradation", ["He et al. 2016, Fig. 6."], figures=["forest.png"]),
    Section("Left out", ["inception-small: no MACs logged."]),
]


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    figures.cost_figure(ROWS, "test_accuracy", "activations", folder / "cost.png")
    figures.forest_figure(ablation_sweep(), folder / "forest.png")
    return folder


class PageParts(HTMLParser):
    """What the checks need from a page: headings, image sources, body rows and their cells."""

    def __init__(self, page: str):
        super().__init__()
        self.headings, self.images, self.rows, self.open = [], [], [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "tr" and "tbody" in self.open:
            self.rows.append([])
        if tag == "td":
            self.rows[-1].append(dict(attrs).get("class"))

    def handle_endtag(self, tag):
        while self.open and self.open.pop() != tag:
            pass

    def handle_data(self, data):
        if self.open and self.open[-1] == "h2":
            self.headings.append(data)


def test_page_holds_every_section_its_table_and_its_images_inline(report_folder):
    page = render_html("Lab report", SECTIONS, report_folder)
    parts = PageParts(page)
    assert parts.headings == [s.heading for s in SECTIONS]
    assert parts.rows == [[None, "num", "num", "num"]] * 3
    assert "<b>" not in page and "Means over seeds &lt;b&gt;&amp; intervals&lt;/b&gt;." in page
    assert [image["alt"] for image in parts.images] == ["cost.png", "forest.png"]
    for image in parts.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        assert (
            base64.b64decode(image["src"][len(prefix) :])
            == (report_folder / image["alt"]).read_bytes()
        )
    assert 'src="http' not in page and str(report_folder) not in page and "<link" not in page
    assert page.count('class="report-table"') == 1


def test_write_html_writes_the_rendered_page(report_folder):
    path = write_html("Lab report", SECTIONS, report_folder)
    assert path == report_folder / "report.html"
    assert path.read_text(encoding="utf-8") == render_html("Lab report", SECTIONS, report_folder)


def test_page_names_a_missing_figure(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.png"):
        render_html("Lab report", [Section("Figures", figures=["absent.png"])], tmp_path)
