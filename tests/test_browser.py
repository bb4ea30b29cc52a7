"""The MLflow UI shows a sweep: headless Chromium against `mlflow server` on loopback.

Nothing downloads a browser or a driver: Debian's chromium and chromium-driver are driven through an
explicit driver path, so Selenium Manager never runs. Screenshots go to test-artifacts/browser/
(or $LAB_TEST_ARTIFACTS/browser/).
"""

import re
import struct
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest
from browser import PNG_SIGNATURE, artifacts_folder, headless_chromium, require_chromium
from conftest import FAST_TRAIN
from mlflow.tracking import MlflowClient
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from lab.config import run_config
from lab.tasks.search.orchestration import search

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one sweep and one Chromium

SWEEP_NAME = "browser"
EPOCHS = 2
PER_EPOCH_METRICS = ("accuracy", "loss", "val_accuracy", "val_loss")
SERVED_PLOTS = ("objective_vs_depth.png", "objective_vs_params.png")
PAGE_WAIT_SECONDS = 30


@dataclass
class Sweep:
    """A finished sweep, logged through the test run's `mlflow server`: the parent run and its trial children."""

    uri: str
    client: MlflowClient
    experiment_id: str
    parent_id: str
    children: dict[str, str]  # run name -> run id


@pytest.fixture(scope="module", autouse=True)
def chromium_installed():
    require_chromium()


@pytest.fixture(scope="module")
def artifacts_dir() -> Path:
    return artifacts_folder("browser")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, mlflow_server) -> Sweep:
    """Two trials of two epochs on a tiny synthetic set: every child has a two-step curve."""
    store, uri = tmp_path_factory.mktemp("browser"), mlflow_server.uri
    keras.utils.set_random_seed(0)  # conftest's function-scoped seeded_float32 has not run yet
    keras.config.set_dtype_policy("float32")
    result = search(
        run_config(
            [
                "task=search",
                "data=synthetic",
                "data.train_size=128",
                "data.test_size=64",
                "model=resnet20",
                f"train.epochs={EPOCHS}",
                *FAST_TRAIN,
                "search.max_trials=2",
                f"search.name={SWEEP_NAME}",
                f"search.directory={store / 'tuner'}",
                f"tracking.uri={uri}",
                f"tracking.experiment={SWEEP_NAME}",
            ]
        )
    )
    keras.backend.clear_session()
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(SWEEP_NAME).experiment_id
    runs = client.search_runs([experiment_id])
    children = {
        r.info.run_name: r.info.run_id for r in runs if r.data.tags.get("lab.role") == "trial"
    }
    assert {
        r.data.tags["mlflow.parentRunId"] for r in runs if r.info.run_id in children.values()
    } == {result.parent_run_id}
    return Sweep(uri, client, experiment_id, result.parent_run_id, children)


@pytest.fixture(scope="module")
def mlflow_ui(sweep):
    """The base URL of the `mlflow server` the sweep logged to."""
    return sweep.uri


@pytest.fixture(scope="module")
def driver():
    with headless_chromium(1600, 1000) as browser:
        yield browser


def visible_text(driver, limit=2000) -> str:
    return driver.find_element(By.TAG_NAME, "body").text[:limit]


def wait_for(driver, condition, what: str, artifacts_dir: Path, timeout=PAGE_WAIT_SECONDS):
    """Wait for `condition`; on timeout fail with a screenshot of the page and its visible text."""
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        shot = artifacts_dir / f"failed-{re.sub(r'[^a-z0-9]+', '-', what.lower()).strip('-')}.png"
        driver.save_screenshot(str(shot))
        pytest.fail(
            f"timed out after {timeout} s waiting for {what} at {driver.current_url}\n"
            f"screenshot: {shot}\nvisible text:\n{visible_text(driver)}"
        )


def run_link(sweep: Sweep, run_id: str) -> str:
    return f'a[href="#/experiments/{sweep.experiment_id}/runs/{run_id}"]'


def displayed_link(css: str):
    """Condition: a displayed link matching `css`, returned once its text has rendered."""

    def find(driver):
        links = [link for link in driver.find_elements(By.CSS_SELECTOR, css) if link.is_displayed()]
        return links[0] if links and links[0].text else False

    return find


def table_rows(driver) -> dict[str, int]:
    """Run id -> position in the runs table (ag-grid repeats each row in its pinned and centre containers)."""
    rows = driver.find_elements(By.CSS_SELECTOR, '[role="row"][row-id][row-index]')
    return {row.get_attribute("row-id"): int(row.get_attribute("row-index")) for row in rows}


def test_experiment_page_lists_the_parent_run_with_its_trial_children(
    sweep, mlflow_ui, driver, artifacts_dir
):
    assert sorted(sweep.children) == [f"{SWEEP_NAME}-trial-0", f"{SWEEP_NAME}-trial-1"]
    # MLflow 3 opens #/experiments/<id> on the GenAI overview; the runs table is the /runs route.
    driver.get(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs")
    parent = wait_for(
        driver, displayed_link(run_link(sweep, sweep.parent_id)), "the parent run", artifacts_dir
    )
    assert parent.text == SWEEP_NAME
    hidden = [
        name
        for name, run_id in sweep.children.items()
        if any(
            link.is_displayed()
            for link in driver.find_elements(By.CSS_SELECTOR, run_link(sweep, run_id))
        )
    ]
    assert hidden == [], (
        f"trial children should start collapsed under the parent, but {hidden} are listed"
    )

    # Nested runs sit collapsed under their parent; the Run Name cell's button expands them.
    row = f'[row-id="{sweep.parent_id}"]'
    driver.find_element(By.CSS_SELECTOR, f'{row} [col-id*="Run Name"] button').click()
    for name, run_id in sweep.children.items():
        child = wait_for(
            driver, displayed_link(run_link(sweep, run_id)), f"trial child {name}", artifacts_dir
        )
        assert child.text == name
    order = table_rows(driver)
    children_rows = sorted(order.get(run_id, -1) for run_id in sweep.children.values())
    assert order.get(sweep.parent_id) == 0 and children_rows == [1, 2], (
        f"rows directly under the parent: {order}"
    )

    screenshot = artifacts_dir / "experiment_page.png"
    assert driver.save_screenshot(str(screenshot)) and screenshot.read_bytes().startswith(
        PNG_SIGNATURE
    )
    print(f"experiment page screenshot: {screenshot}")


def chart_line(metric: str):
    """Condition: the plotly line path (`d` attribute) in the chart card titled exactly `metric`."""
    card = f'//div[@data-testid="experiment-view-compare-runs-card"][.//h4[@title="{metric}"]]'

    def find(driver):
        lines = driver.find_elements(
            By.XPATH,
            f'{card}//*[contains(@class, "js-plotly-plot")]//*[local-name()="path"]'
            f'[contains(@class, "js-line")]',
        )
        return lines[0].get_attribute("d") if lines and lines[0].get_attribute("d") else False

    return find


def vertices(svg_path: str) -> int:
    """Points a plotly `M x,y L x,y ...` polyline passes through."""
    return len(re.findall(r"[ML]", svg_path))


def test_trial_metrics_page_draws_the_per_epoch_curves(sweep, mlflow_ui, driver, artifacts_dir):
    name, run_id = min(sweep.children.items())
    for metric in PER_EPOCH_METRICS:
        steps = [m.step for m in sweep.client.get_metric_history(run_id, metric)]
        assert steps == list(range(1, EPOCHS + 1)), f"{name} {metric} steps: {steps}"

    driver.get(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs/{run_id}/model-metrics")
    search_box = 'input[placeholder="Search metric charts"]'
    wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, search_box),
        "the metric chart search",
        artifacts_dir,
    )
    for metric in PER_EPOCH_METRICS:
        # Charts render lazily as they scroll into view; the search narrows the grid to this one.
        box = driver.find_element(By.CSS_SELECTOR, search_box)
        # element.clear() bypasses React's onChange: select, then overtype
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(metric)
        line = wait_for(driver, chart_line(metric), f"the {metric} curve of {name}", artifacts_dir)
        assert vertices(line) == EPOCHS, (
            f"{metric} curve of {name} should join {EPOCHS} epochs: d={line!r}"
        )


def png_width(png: bytes) -> int:
    """Width from the IHDR chunk, which follows the 8-byte signature and an 8-byte chunk header."""
    assert png.startswith(PNG_SIGNATURE), png[:16]
    return struct.unpack(">I", png[16:20])[0]


def served_artifact(base_url: str, run_id: str, path: str) -> bytes:
    """The bytes the UI itself fetches for an artifact preview."""
    with urllib.request.urlopen(
        f"{base_url}/get-artifact?path={path}&run_uuid={run_id}", timeout=10
    ) as response:
        return response.read()


def rendered_image(alt: str):
    """Condition: the natural width of a loaded <img alt=`alt`>, once the browser has decoded it."""
    script = (
        "const img = [...document.querySelectorAll('img')].find(i => i.alt === arguments[0]);"
        "return img && img.complete ? img.naturalWidth : 0;"
    )
    return lambda driver: driver.execute_script(script, alt) or False


def artifact_tree_names(driver):
    """Condition: the names in the artifact browser's file tree, once it has any."""
    nodes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="artifact-tree-node"]')
    return {node.get_attribute("artifact-name") for node in nodes} or False


def test_parent_comparison_plots_are_served_and_rendered(sweep, mlflow_ui, driver, artifacts_dir):
    artifact_root = Path(
        urllib.parse.urlparse(sweep.client.get_run(sweep.parent_id).info.artifact_uri).path
    )
    assert artifact_root.is_dir(), f"the server keeps the parent's artifacts at {artifact_root}"
    for plot in SERVED_PLOTS:
        served = served_artifact(mlflow_ui, sweep.parent_id, plot)
        assert served.startswith(PNG_SIGNATURE), served[:64]
        assert served == (artifact_root / plot).read_bytes(), (
            f"{plot} served differs from the store"
        )

    driver.get(f"{mlflow_ui}/#/experiments/{sweep.experiment_id}/runs/{sweep.parent_id}/artifacts")
    listed = wait_for(driver, artifact_tree_names, "the parent's artifact tree", artifacts_dir)
    assert listed == {a.path for a in sweep.client.list_artifacts(sweep.parent_id)}
    for plot in SERVED_PLOTS:
        # Only a click selects a file: changing the #/.../artifacts/<file> route in place keeps the old preview.
        driver.find_element(
            By.CSS_SELECTOR, f'[data-testid="artifact-tree-node"][artifact-name="{plot}"]'
        ).click()
        width = wait_for(driver, rendered_image(plot), f"the {plot} preview", artifacts_dir)
        expected = png_width((artifact_root / plot).read_bytes())
        assert width == expected, f"{plot} rendered {width} px wide, the PNG is {expected}"


def started_ui(command: list, cwd: Path, timeout: float = 60.0):
    """`python run.py task=ui ...` started; returns (process, the URL it printed, seconds to print it)."""
    import subprocess
    import sys
    import time

    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).parents[1] / "run.py"), *command],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    while time.monotonic() - start < timeout:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("open http"):
            return process, line.split(" ", 1)[1].strip(), time.monotonic() - start
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"task=ui printed no URL within {timeout} s:\n{''.join(lines)[-3000:]}")


def test_task_ui_opens_on_the_sweeps_runs_in_the_model_training_view(
    sweep, mlflow_server, driver, artifacts_dir, tmp_path
):
    """Issue 29: `task=ui` serves the SQLite store the sweep wrote (here through a server) and
    prints a URL that lands on the model-training runs table of that sweep alone: its parent, with
    the trials under it, not MLflow 3's GenAI overview of traces."""
    store = f"sqlite:///{mlflow_server.log.parent / 'mlflow.db'}"
    process, url, seconds = started_ui(
        [
            "task=ui",
            "ui.port=0",
            f"tracking.uri={store}",
            f"search.name={SWEEP_NAME}",
            f"tracking.experiment={SWEEP_NAME}",
            f"hydra.run.dir={tmp_path}",
        ],
        tmp_path,
    )
    try:
        print(f"task=ui printed its URL after {seconds:.1f} s")
        assert (
            "workflowType=machine_learning" in url
            and f"/#/experiments/{sweep.experiment_id}/runs?" in url
        )
        driver.get(url)
        parent = wait_for(
            driver,
            displayed_link(run_link(sweep, sweep.parent_id)),
            "the parent run",
            artifacts_dir,
        )
        assert parent.text == SWEEP_NAME
        sidebar = visible_text(driver)
        assert (
            "Model registry" in sidebar
            and "Observability" not in sidebar
            and "Evaluation runs" not in sidebar
        )
        # the parent and its two trials, nothing else
        assert re.search(r"\b3 matching runs\b", sidebar), sidebar
        screenshot = artifacts_dir / "task_ui_landing.png"
        assert driver.save_screenshot(str(screenshot))
    finally:
        process.terminate()
        assert process.wait(30) == 0  # SIGTERM stops the UI and its server cleanly
