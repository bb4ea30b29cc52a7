"""Dispatch of `python run.py task=NAME`. The composed config is turned into the typed, checked
`RunConfig` once, here (quick mode applied first); every task and everything below takes that."""

from __future__ import annotations

import os
import sys
from typing import Callable, Dict, Optional

from omegaconf import DictConfig

from lab.config import Role, RunConfig, Task, checked_run_config
from lab.command_line import command_line_keys, output_dir


def run_train(cfg: RunConfig) -> Optional[float]:
    from lab.tracking.runs import ui_hint  # noqa: PLC0415  (imports Keras: only when a task runs)
    from lab.training.train import train  # noqa: PLC0415

    result = train(cfg)
    best = (f", best val_accuracy {result.best_val_accuracy:.4f} (epoch {result.best_epoch})"
            if result.best_val_accuracy is not None else "")
    untrained = f" (did not train: {result.not_trained}; tagged lab.trained=false)" if result.not_trained else ""
    print(f"test_accuracy {result.test_accuracy:.4f}{best}{untrained}")
    print(f"MLflow run {result.run_id} in {cfg.tracking.uri}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    return result.selection_accuracy  # what a Hydra sweeper (`-m`) optimises


def restart_process() -> None:
    """Replaces this process with a fresh one running the same command (which resumes the sweep)."""
    from lab.native_logs import restore_stderr  # noqa: PLC0415

    sys.stdout.flush()
    restore_stderr()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def run_search(cfg: RunConfig) -> Optional[float]:
    from lab.search.run import search  # noqa: PLC0415
    from lab.search.sweep import RestartSweep  # noqa: PLC0415
    from lab.tracking.runs import ui_hint  # noqa: PLC0415

    role = cfg.search.distributed.role
    if role is Role.launcher:
        from lab.search.launcher import launch  # noqa: PLC0415

        return launch(cfg)
    try:
        result = search(cfg)
    except RestartSweep as restart:
        print(restart, flush=True)
        restart_process()
    if role is Role.worker:
        print(f"worker {cfg.search.distributed.worker_index} ran trials {', '.join(result.trial_seconds) or 'none'} "
              f"of sweep {cfg.search.name}; the chief reports the sweep")
        return None
    if result.best_trial is None:
        print(f"sweep {cfg.search.name}: {len(result.rows)} trials; none trained, so none is best "
              f"(each run's lab.trained=false tag says why)")
    else:
        print(f"sweep {cfg.search.name}: {len(result.rows)} trials; best trial {result.best_trial} "
              f"{cfg.search.objective}={result.best_value:.4f}")
    search_cfg = cfg.search
    if search_cfg.ablation is not None:
        from lab.search.report import sweep_ablation_markdown  # noqa: PLC0415

        print_markdown(sweep_ablation_markdown(result.rows, cfg, result.correct))
    for name, path in result.figures.items():
        if name == "error_curves.png":
            print(f"error curves (training and validation error per epoch): {path}")
    if result.summary:
        print(f"summary: {result.summary}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.parent_run_id, sweep=cfg.search.name))
    return result.best_value


def print_markdown(text: str) -> None:
    """Markdown rendered (tables drawn, emphasis shown) on a terminal; as it is, the text of
    summary.md, when the output goes to a file or a pipe."""
    if not sys.stdout.isatty():
        print(text)
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.markdown import Markdown  # noqa: PLC0415

    Console().print(Markdown(text))


def data_on_command_line() -> bool:
    """Whether the user chose `data=...` (Hydra's task overrides), as opposed to the default."""
    return "data" in command_line_keys()


def run_analyze(cfg: RunConfig) -> None:
    from lab.analysis import analyze_model, render_table  # noqa: PLC0415
    from lab.data import input_spec  # noqa: PLC0415
    from lab.models import build_model  # noqa: PLC0415

    shape, classes = cfg.model.input_shape, cfg.model.classes
    if data_on_command_line():
        shape, classes = input_spec(cfg.data)
    shape = cfg.analyze.input_shape or shape
    classes = cfg.analyze.classes or classes
    analysis = analyze_model(build_model(cfg.model, shape, classes), cfg.train.precision.value)
    render_table(analysis)
    path = output_dir() / "analysis.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(analysis.to_json())
    print(f"wrote {path}")


def run_list(cfg: RunConfig) -> None:
    """The variants `list.*` selects, built and counted; with `list.trained`, each one's best
    measured test accuracy in `tracking.uri`. A filter that leaves nothing prints one line."""
    from lab.listing import listed_rows, nothing_matched, render  # noqa: PLC0415

    rows, selected = listed_rows(cfg.list)
    if not rows:
        print(nothing_matched(cfg.list, selected))
        return
    measured = None
    if cfg.list.trained:
        from lab.tracking.measured import measured_variants  # noqa: PLC0415

        measured = measured_variants(cfg.tracking.uri, [row.name for row in rows])
    render(rows, measured)


def run_bench(cfg: RunConfig) -> None:
    from lab.benchmark import bench, print_table, write_record  # noqa: PLC0415

    record = bench(cfg)
    print_table(record)
    print(f"wrote {write_record(record, cfg.bench.out)}")


def run_evaluate(cfg: RunConfig) -> float:
    from lab.evaluate import evaluate  # noqa: PLC0415
    from lab.tracking.runs import ui_hint  # noqa: PLC0415

    result = evaluate(cfg)
    print("  ".join(f"{name} {value:.4f}" for name, value in result.metrics.items()))
    print(f"MLflow run {result.run_id} in {cfg.tracking.uri}" + (f" (evaluates run {result.source_run_id})"
                                                                 if result.source_run_id else ""))
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))
    return result.metrics["test_accuracy"]


def run_report(cfg: RunConfig) -> None:
    """Everything trained in `tracking.uri`, pooled by what was trained, on one page."""
    from lab.report.build import build_report  # noqa: PLC0415
    from lab.tracking.runs import ui_hint  # noqa: PLC0415

    result = build_report(cfg)
    print(f"{len(result.collected.runs)} training runs, {len(result.rows)} networks, "
          f"{len(result.collected.sweeps)} sweeps: {result.seconds:.1f} s")
    for name in ("report.html", "report.md", "report.csv"):
        print(f"wrote {result.folder / name}")
    print(ui_hint(cfg.tracking.uri, result.experiment_id, result.run_id))


def run_plan(cfg: RunConfig) -> None:
    """What the command would run without `task=plan`: a sweep (an experiment, or `search.`
    keys on the command line) or one training; nothing is trained or written."""
    from lab.search.plan import finished_training_runs, plan_lines, planned_task  # noqa: PLC0415
    from lab.tracking.runs import sqlite_file  # noqa: PLC0415

    database = sqlite_file(cfg.tracking.uri)
    runs = finished_training_runs(cfg.tracking.uri) if database is None or database.is_file() else []
    quick = dict(cfg.quick_settings) if cfg.quick else {}
    for line in plan_lines(cfg, quick, runs, planned_task(command_line_keys())):
        print(line)


def run_ui(cfg: RunConfig) -> None:
    """MLflow's UI for `tracking.uri`, lean, on loopback, opened on the comparison."""
    from lab.tracking.ui import serve  # noqa: PLC0415

    serve(cfg, command_line_keys(), output_dir() / "mlflow-ui.log")


TASKS: Dict[Task, Callable[[RunConfig], Optional[float]]] = {
    Task.train: run_train, Task.search: run_search, Task.analyze: run_analyze, Task.list: run_list,
    Task.bench: run_bench, Task.evaluate: run_evaluate, Task.report: run_report, Task.ui: run_ui,
    Task.plan: run_plan}


TRACKED = (Task.train, Task.search, Task.bench, Task.evaluate)


def run_task(composed: DictConfig) -> Optional[float]:
    """Hydra's composed config -> quick mode -> `RunConfig` (range checks) -> the task."""
    cfg = checked_run_config(composed, command_line_keys())
    from lab.preflight import preflight  # noqa: PLC0415

    preflight(cfg)  # bad data, axes or address: before MLflow or any framework loads
    if cfg.task in TRACKED:
        from lab.tracking.store import prepare_store  # noqa: PLC0415

        prepare_store(cfg.tracking.uri)  # before any model is built
    from lab import native_logs  # noqa: PLC0415

    if cfg.task in (Task.report, Task.ui, Task.plan) or (cfg.task is Task.search and cfg.search.distributed.role is Role.launcher):
        native_logs.restore_stderr()  # a report and the launcher run no framework
    else:
        native_logs.framework_started()
    return TASKS[cfg.task](cfg)
