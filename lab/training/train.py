"""`train(cfg)`: one seeded training run, recorded as one MLflow run; and `fit_and_evaluate`, its
body and every search trial's, in named steps: log the network, prepare the compiled model, fit,
test, log what was kept."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from lab import runtime
from lab.compat.keras import build_for_fit
from lab.config import Checkpoint, RunConfig
from lab.config.overrides import config_yaml, run_params
from lab.config.spec_hash import spec_hash
from lab.data import Splits, load_splits
from lab.errors import NonFiniteLossError
from lab.models import build_model
from lab.models.analysis import analyze_model
from lab.tracking import TrackedRun, tracked_run
from lab.tracking.tags import (
    DTYPE_POLICY_TAG,
    FAMILY_TAG,
    FROM_RUN_TAG,
    MODEL_TAG,
    PRUNED_TAG,
    SPEC_HASH_TAG,
    TASK_TAG,
)
from lab.training import reuse
from lab.training import state as training_state
from lab.training.budgets import check_budgets
from lab.training.callbacks import RichProgress
from lab.training.checkpoint import EarlyStop
from lab.training.compiled import (
    Training,
    compile_model,
    evaluation_batch,
    optimizer_steps,
    targets,
    training_model,
)
from lab.training.fit_callbacks import epoch_callbacks
from lab.training.latency import measure_latency
from lab.training.outcome import log_kept_model, tested
from lab.training.pruning import MedianPruner
from lab.training.state import TrainingState
from lab.training.trained import improvement_last_quarter, trained_tags


@dataclass
class TrainResult:
    run_id: str
    experiment_id: str
    history: Dict[str, List[float]]
    test_loss: float
    test_accuracy: float
    best_val_accuracy: Optional[float]
    best_epoch: Optional[int]
    cost: Dict[str, float]  # the analysis totals: params_*, macs, activations, depth, ...
    pruned_at: Optional[int] = None  # the epoch `search.pruner` stopped it at
    pruned_objective: Optional[float] = None  # its best epoch objective by then
    # why the run does not count as trained (`lab.training.trained`)
    not_trained: Optional[str] = None
    # the inference latency where it was asked for (`Latency.metrics`: latency_ms, inference_images_per_second, ...)
    latency: Dict[str, float] = field(default_factory=dict)

    @property
    def selection_accuracy(self) -> float:
        """The best epoch's validation accuracy, or the test accuracy without a validation split:
        what a sweep with `search.objective=val_accuracy` compares (any other objective is read
        from the history or the test figures: `Sweep.objective_of`)."""
        return self.best_val_accuracy if self.best_val_accuracy is not None else self.test_accuracy


@dataclass(frozen=True)
class FitOptions:
    """What a caller hands `fit_and_evaluate` beside the config, the data and the run; the
    defaults are what `train(cfg)` uses.

    Attributes:
        budgets: `SearchConfig.budgets()`: a model over one fails before any training.
        extra_callbacks: Keras callbacks run after the lab's own.
        objective: (metric, "max"|"min"): the epoch `train.checkpoint=best` keeps and
            `train.early_stopping` watches (training loss without a validation split).
        pruner: a run it stops is tested where it stopped and logs no model.
        net: the network `seeded_network` built already (else built here, the same way).
        start: a training to go on with (a Hyperband trial's previous rung): its model and
            optimizer state are loaded and the fit runs epochs start.epoch + 1 .. train.epochs,
            numbered so in every record.
        keep_last_state: gets the last epoch's state, before the kept epoch's weights are put
            back.
        latency: (batch, repeats): the kept model's inference latency is measured once it is
            tested (`lab.training.latency`) and logged with the run's final metrics.
    """

    budgets: Optional[Dict[str, Optional[int]]] = None
    extra_callbacks: Sequence[keras.callbacks.Callback] = ()
    objective: Tuple[str, str] = ("val_accuracy", "max")
    pruner: Optional[MedianPruner] = None
    net: Optional[keras.Model] = None
    start: Optional[TrainingState] = None
    keep_last_state: Optional[Callable[[TrainingState], None]] = None
    latency: Optional[Tuple[int, int]] = None


def summary_text(model: keras.Model) -> str:
    lines: List[str] = []
    model.summary(print_fn=lambda text, **kwargs: lines.append(text), line_length=120)
    return "\n".join(lines)


def best_epoch(history: Dict[str, List[float]], initial_epoch: int = 0):
    """(best val_accuracy, its epoch number): a fit that began at `initial_epoch` numbers its
    first epoch initial_epoch + 1."""
    scores = history.get("val_accuracy")
    if not scores:
        return None, None
    best = int(np.argmax(scores))
    return float(scores[best]), initial_epoch + best + 1


def compile_seconds(epoch_seconds: Sequence[float]) -> float:
    """The first epoch compiles: its excess over the median of the later epochs, never below 0
    (a first epoch no slower than the others compiled within the noise of one epoch: 0, not the
    negative difference a noisy later epoch would give)."""
    return max(0.0, epoch_seconds[0] - float(np.median(epoch_seconds[1:])))


def seeded_network(cfg: RunConfig, splits: Splits) -> keras.Model:
    """Seeds the run (`cfg.seed`), sets its precision and builds its network (with `model.weights`
    loaded where set): the first steps of every run, in this order."""
    reuse.seed(cfg.seed)
    # per run: clear_session() between trials resets it
    runtime.set_precision(cfg.train.precision.value)
    return build_model(cfg.model, splits.input_shape, splits.classes)


def log_network(
    cfg: RunConfig, splits: Splits, run: TrackedRun, net: keras.Model, options: FitOptions
) -> Dict[str, float]:
    """Logs the split sizes, the network's cost, dtype policy and spec hash; refuses a network
    over `options.budgets`; logs its summary and analysis. Returns the analysis totals."""
    analysis = analyze_model(net, cfg.train.precision.value)
    # The split sizes: a measured error's resolution is one example in these (`lab.verdicts.ablation`).
    run.log_params(
        {
            "data.source": splits.source,
            "data.train_examples": len(splits.x_train),
            "data.val_examples": len(splits.x_val),
            "data.test_examples": len(splits.x_test),
        }
    )
    run.log_metrics(analysis.totals)  # params_*, macs, activations, activation_bytes
    start = options.start
    run.set_tags(
        {
            DTYPE_POLICY_TAG: keras.config.dtype_policy().name,  # what the layers really used
            SPEC_HASH_TAG: spec_hash(
                cfg, splits.input_shape, start.epoch if start is not None else 0
            ),
        }
    )
    check_budgets(cfg.model.name, analysis.totals, options.budgets or {})
    run.log_text(summary_text(net), "model_summary.txt")
    run.log_text(analysis.to_json(), "analysis.json")
    return dict(analysis.totals)


def prepared_training(
    cfg: RunConfig, splits: Splits, net: keras.Model, start: Optional[TrainingState]
) -> Training:
    """The compiled model around `net` (a compiled one reused under `train.reuse_compiled`), with
    `start`'s model and optimizer state loaded where given."""
    model = training_model(net, splits, cfg)
    steps_per_epoch = math.ceil(len(splits.x_train) / cfg.train.batch_size)
    compile_model(model, net, cfg.model, cfg, steps_per_epoch)
    if cfg.train.reuse_compiled:
        key = reuse.reuse_key(
            cfg.model,
            splits.input_shape,
            splits.classes,
            cfg.train,
            steps_per_epoch,
            len(splits.x_val) > 0,
        )
        model = reuse.model_to_fit(model, key)
    build_for_fit(model, splits.x_train[:1], targets(net, splits.y_train[:1], splits.classes))
    if start is not None:
        training_state.restore(model, start)
    return Training(net, model, start, optimizer_steps(model))


def fit_epochs(
    cfg: RunConfig, splits: Splits, run: TrackedRun, training: Training, callbacks: list
) -> Dict[str, List[float]]:
    """Fits epochs initial_epoch + 1 .. train.epochs (a progress bar under `train.verbose`);
    a non-finite loss tags the run as not trained before it propagates. Returns the history."""
    net = training.net
    progress = RichProgress(cfg.train.batch_size) if cfg.train.verbose else None
    validation = (
        (splits.x_val, targets(net, splits.y_val, splits.classes)) if len(splits.x_val) else None
    )
    try:
        history = training.model.fit(
            splits.x_train,
            targets(net, splits.y_train, splits.classes),
            batch_size=cfg.train.batch_size,
            initial_epoch=training.initial_epoch,
            epochs=cfg.train.epochs,
            validation_data=validation,
            validation_batch_size=evaluation_batch(cfg),
            shuffle=True,
            verbose=0,
            callbacks=callbacks + ([progress] if progress else []),
        )
    except NonFiniteLossError as error:
        run.set_tags(trained_tags(str(error)))
        raise
    finally:
        if progress:
            progress.on_train_end()
    return history.history


def final_metrics(
    history: Dict[str, List[float]],
    test: Dict[str, float],
    training: Training,
    early_stop: Optional[EarlyStop],
) -> Dict[str, float]:
    """The run's final metrics once fitted and tested (pruning and the kept model add theirs)."""
    best_val, best_at = best_epoch(history, training.initial_epoch)
    final = {
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        # this run's own steps
        "train_steps": optimizer_steps(training.model) - training.steps_before,
    }
    improving = improvement_last_quarter(history)
    if improving is not None:
        final["train_error_drop_last_quarter"] = improving
    if training.start is not None:
        final.update(
            initial_epoch=training.initial_epoch, initial_train_steps=training.steps_before
        )
    if best_val is not None:
        final.update(best_val_accuracy=best_val, best_epoch=best_at)
    epochs = history.get("epoch_seconds", [])
    final["epochs_trained"] = len(history.get("loss", []))  # this run's own, as train_steps
    if epochs:
        # what `task=report` compares per epoch
        final["epoch_seconds_median"] = float(np.median(epochs))
    if len(epochs) > 1:
        final["compile_seconds"] = compile_seconds(epochs)
    if early_stop is not None and early_stop.stopped_epoch is not None:
        final["stopped_epoch"] = early_stop.stopped_epoch
    return final


def fit_and_evaluate(cfg: RunConfig, splits: Splits, run: TrackedRun, **options) -> TrainResult:
    """Builds, compiles, fits and tests one model, logging to `run`: the body of `train` and of
    every search trial (seeded with `cfg.seed`). The weights `train.checkpoint` keeps (the best
    epoch's by `objective`, or the last) are the ones tested and logged as the run's model.

    Args:
        cfg: the run's config.
        splits: the data (`load_splits`).
        run: the open MLflow run everything is logged to; it is left open.
        **options: `FitOptions` fields by name (budgets, extra_callbacks, objective, pruner,
            net, start, keep_last_state), each as documented there.

    Returns:
        The run's `TrainResult`.

    Raises:
        TypeError: an option `FitOptions` does not have.
        ModelTooBigError: the model is over one of `budgets`, before any training.
        NonFiniteLossError: the loss became non-finite; the run is tagged as not trained first.
    """
    return fit_and_evaluate_with(cfg, splits, run, FitOptions(**options))


def fit_and_evaluate_with(
    cfg: RunConfig, splits: Splits, run: TrackedRun, options: FitOptions
) -> TrainResult:
    """`fit_and_evaluate` with its options as one record.

    Args:
        cfg: the run's config.
        splits: the data (`load_splits`).
        run: the open MLflow run everything is logged to; it is left open.
        options: what the caller adds (`FitOptions`).

    Returns:
        The run's `TrainResult`.
    """
    net = seeded_network(cfg, splits) if options.net is None else options.net
    totals = log_network(cfg, splits, run, net, options)
    training = prepared_training(cfg, splits, net, options.start)
    callbacks, best_weights, early_stop = epoch_callbacks(
        cfg, splits, run, options.objective, options.pruner, options.extra_callbacks
    )
    history = fit_epochs(cfg, splits, run, training, callbacks)
    last_epoch = training.initial_epoch + len(history.get("loss", []))
    if options.keep_last_state is not None:
        options.keep_last_state(training_state.capture(training.model, last_epoch))
    kept_epoch = (best_weights.restore() if best_weights else None) or last_epoch
    test, not_trained = tested(cfg, splits, run, training, history)
    final = final_metrics(history, test, training, early_stop)
    latency = measured_latency(splits, run, training, options.latency)
    final.update(latency)
    pruned_at = note_pruned(run, final, options.pruner)
    if cfg.train.checkpoint is not Checkpoint.none and pruned_at is None:
        final.update(log_kept_model(cfg, splits, run, training.model, kept_epoch))
    run.log_metrics(final)
    best_val, best_at = best_epoch(history, training.initial_epoch)
    pruned_objective = options.pruner.best if pruned_at is not None else None
    return TrainResult(
        run.run_id,
        run.experiment_id,
        history,
        test["loss"],
        test["accuracy"],
        best_val,
        best_at,
        totals,
        pruned_at,
        pruned_objective,
        not_trained,
        latency,
    )


def note_pruned(run: TrackedRun, final: Dict[str, float], pruner: Optional[MedianPruner]):
    """The epoch `pruner` stopped the run at (None where it ran to its end), tagged on the run and
    added to its final metrics."""
    pruned_at = pruner.pruned_at if pruner is not None else None
    if pruned_at is not None:
        final["pruned_at_epoch"] = pruned_at
        run.set_tags({PRUNED_TAG: str(pruned_at)})
    return pruned_at


def measured_latency(
    splits: Splits, run: TrackedRun, training: Training, latency: Optional[Tuple[int, int]]
) -> Dict[str, float]:
    """The tested model's inference latency at (batch, repeats), its settings and device logged
    as params; {} where none was asked for."""
    if latency is None:
        return {}
    measured = measure_latency(training.model, splits.x_test, *latency)
    run.log_params(measured.params())
    return measured.metrics()


def run_name(cfg: RunConfig) -> str:
    return cfg.tracking.run_name or f"{cfg.model.name}-{cfg.data.name}-seed{cfg.seed}"


def run_tags(cfg: RunConfig, task: str) -> Dict[str, str]:
    retrained = {FROM_RUN_TAG: cfg.from_run} if cfg.from_run else {}
    return {
        TASK_TAG: task,
        **runtime.provenance_tags(),
        MODEL_TAG: cfg.model.name,
        FAMILY_TAG: cfg.model.family,
        **retrained,
    }


def train(cfg: RunConfig) -> TrainResult:
    """Seeds, loads data, builds, compiles, fits and tests; everything goes to one MLflow run.

    Args:
        cfg: the run's config (`lab.config.run_config`).

    Returns:
        The run's `TrainResult` (its run id, history, test figures, best epoch and cost).

    Raises:
        LabError: a data path or file, a network or weights that cannot be used fail before any
            MLflow run exists; a model too big or a non-finite loss fail the run
            (`fit_and_evaluate`).

    Example:
        >>> from lab.config import run_config
        >>> cfg = run_config(["data=synthetic", "data.train_size=256", "train.epochs=1"])
        >>> result = train(cfg)
        >>> 0.0 <= result.test_accuracy <= 1.0
        True
    """
    runtime.configure(cfg.train)
    splits = load_splits(cfg.data, cfg.seed)  # a bad data path or file fails before any run exists
    # So does a network that cannot be built, or weights that do not fit it.
    net = seeded_network(cfg, splits)
    with tracked_run(cfg.tracking, run_name(cfg), run_tags(cfg, "train")) as run:
        run.log_params(run_params(cfg))
        run.log_text(config_yaml(cfg), "config.yaml")
        return fit_and_evaluate(cfg, splits, run, net=net)
