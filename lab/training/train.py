"""`train(cfg)`: one seeded training run, recorded as one MLflow run."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from lab import runtime
from lab.config import Checkpoint, RunConfig
from lab.config.overrides import config_yaml, run_params
from lab.config.spec_hash import SPEC_HASH_TAG, spec_hash
from lab.data import Splits, load_splits
from lab.errors import ModelTooBigError, NonFiniteLossError
from lab.models import build_model
from lab.models.analysis import analyze_model
from lab.models.heads import MAIN_OUTPUT, aux_output_name
from lab.stats.testset import CORRECT_ARTIFACT, encode_correct
from lab.tracking import TrackedRun, tracked_run
from lab.tracking.callback import MlflowEpochLogger
from lab.tracking.logged_models import MODEL_URI_TAG, log_model
from lab.training import reuse
from lab.training import state as training_state
from lab.training.callbacks import EpochMetrics, NonFiniteLossGuard, RichProgress, main_head_logs
from lab.training.checkpoint import BestWeights, EarlyStop, epoch_objective, monitored
from lab.training.optimizers import make_optimizer
from lab.training.preprocessing import RandomPadCropFlip, Standardize
from lab.training.pruning import MedianPruner
from lab.training.state import TrainingState
from lab.training.trained import (
    PRUNED_TAG,
    improvement_last_quarter,
    not_trained_reason,
    trained_tags,
)


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
    not_trained: Optional[str] = (
        None  # why the run does not count as trained (`lab.training.trained`)
    )

    @property
    def selection_accuracy(self) -> float:
        """The best epoch's validation accuracy, or the test accuracy without a validation split:
        what a sweep with `search.objective=val_accuracy` compares (any other objective is read
        from the history or the test figures: `Sweep.objective_of`)."""
        return self.best_val_accuracy if self.best_val_accuracy is not None else self.test_accuracy


def summary_text(model: keras.Model) -> str:
    lines: List[str] = []
    model.summary(print_fn=lambda text, **kwargs: lines.append(text), line_length=120)
    return "\n".join(lines)


def training_model(net: keras.Model, splits: Splits, cfg: RunConfig) -> keras.Model:
    """uint8 images -> augmentation (training only) -> standardisation -> the network."""
    inputs = keras.Input(splits.input_shape, dtype="uint8", name="images")
    x = inputs
    augment = cfg.train.augment
    if augment.pad or augment.flip:
        x = RandomPadCropFlip(augment.pad, augment.flip, seed=cfg.seed, name="augment")(x)
    x = Standardize(splits.mean, splits.std, name="standardize")(x)
    return keras.Model(inputs, net(x), name=f"{net.name}_training")


def compile_model(
    model: keras.Model, net: keras.Model, spec, cfg: RunConfig, steps_per_epoch: int
) -> None:
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing)
    accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    options = dict(
        optimizer=make_optimizer(cfg.train, steps_per_epoch), jit_compile=cfg.train.jit_compile
    )
    if isinstance(net.output, dict):
        weights = {
            MAIN_OUTPUT: 1.0,
            **{aux_output_name(h.tap): h.loss_weight for h in spec.aux_heads},
        }
        model.compile(
            loss={name: loss for name in net.output},
            loss_weights=weights,
            metrics={MAIN_OUTPUT: [accuracy]},
            **options,
        )
    else:
        model.compile(loss=loss, metrics=[accuracy], **options)


def targets(net: keras.Model, labels: np.ndarray, classes: int):
    """One-hot labels (label smoothing needs them), one copy per output of a multi-output net."""
    one_hot = keras.utils.to_categorical(labels, classes).astype("float32")
    return {name: one_hot for name in net.output} if isinstance(net.output, dict) else one_hot


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


def evaluation_batch(cfg: RunConfig) -> int:
    """Evaluation runs in inference mode, where the batch size changes no result, and large
    batches are faster on CPU than a small training batch."""
    return max(cfg.train.batch_size, 256)


def early_stopping(
    cfg: RunConfig, objective: Tuple[str, str], has_validation: bool
) -> Optional[EarlyStop]:
    """`train.early_stopping` on the run's epoch objective (training loss without a validation split)."""
    stopping = cfg.train.early_stopping
    if stopping.patience is None:
        return None
    metric, mode = epoch_objective(*objective, has_validation) or ("loss", "min")
    return EarlyStop(metric, mode, stopping.patience, stopping.min_delta)


# The model budgets of a sweep (`search.max_params`, ...): what each limits, as the analysis counts it.
BUDGETED = {
    "max_params": ("params_total", "parameters"),
    "max_macs": ("macs", "MACs per example"),
    "max_activation_bytes": ("activation_bytes", "bytes of forward activations per example"),
}


def check_budgets(name: str, totals: Dict[str, int], budgets: Dict[str, Optional[int]]) -> None:
    """ModelTooBigError naming the first budget (`search.max_params`, ...) the model is over."""
    for key, limit in budgets.items():
        total, what = BUDGETED[key]
        if limit is not None and totals[total] > limit:
            raise ModelTooBigError(
                f"{name} has {totals[total]:,} {what}, over the budget search.{key}={limit:,}"
            )


def seeded_network(cfg: RunConfig, splits: Splits) -> keras.Model:
    """Seeds the run (`cfg.seed`), sets its precision and builds its network (with `model.weights`
    loaded where set): the first steps of every run, in this order."""
    keras.utils.set_random_seed(cfg.seed)
    runtime.set_precision(
        cfg.train.precision.value
    )  # per run: clear_session() between trials resets it
    return build_model(cfg.model, splits.input_shape, splits.classes)


def correct_flags(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> np.ndarray:
    """Which images the main head classifies correctly (one more pass over the test set: the
    finite test set's noise is counted from these, `lab.stats.testset`)."""
    scores = model.predict(images, batch_size=batch_size, verbose=0)
    if isinstance(scores, dict):
        scores = scores[MAIN_OUTPUT]
    elif isinstance(scores, (list, tuple)):
        scores = scores[0]
    return np.argmax(np.asarray(scores), axis=-1) == np.asarray(labels).reshape(-1)


def optimizer_steps(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def fit_and_evaluate(
    cfg: RunConfig,
    splits: Splits,
    run: TrackedRun,
    budgets: Optional[Dict[str, Optional[int]]] = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    objective: Tuple[str, str] = ("val_accuracy", "max"),
    pruner: Optional[MedianPruner] = None,
    net: Optional[keras.Model] = None,
    start: Optional[TrainingState] = None,
    keep_last_state: Optional[Callable[[TrainingState], None]] = None,
) -> TrainResult:
    """Builds, compiles, fits and tests one model, logging to `run`; the body of `train` and of
    every search trial (seeded with `cfg.seed`). A model over one of `budgets`
    (`SearchConfig.budgets`) fails before any training. The weights `train.checkpoint` keeps
    (the best epoch's by `objective`,
    (metric, "max"|"min"), or the last) are the ones tested and logged as the run's model. A run
    `pruner` stops is tested where it stopped and logs no model. `net`: the network
    `seeded_network` built already (else built here, the same way). `start`: a training to go on
    with (a Hyperband trial's previous rung): its model and optimizer state are loaded and the fit
    runs epochs start.epoch + 1 .. train.epochs, numbered so in every record. `keep_last_state`
    gets the last epoch's state, before the kept epoch's weights are put back."""
    spec = cfg.model
    net = seeded_network(cfg, splits) if net is None else net
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
    run.set_tags(
        {
            "lab.dtype_policy": keras.config.dtype_policy().name,  # what the layers really used
            SPEC_HASH_TAG: spec_hash(
                cfg, splits.input_shape, start.epoch if start is not None else 0
            ),
        }
    )
    check_budgets(spec.name, analysis.totals, budgets or {})
    run.log_text(summary_text(net), "model_summary.txt")
    run.log_text(analysis.to_json(), "analysis.json")

    model = training_model(net, splits, cfg)
    steps_per_epoch = math.ceil(len(splits.x_train) / cfg.train.batch_size)
    compile_model(model, net, spec, cfg, steps_per_epoch)
    if cfg.train.reuse_compiled:
        model = reuse.model_to_fit(
            model,
            reuse.reuse_key(
                spec,
                splits.input_shape,
                splits.classes,
                cfg.train,
                steps_per_epoch,
                len(splits.x_val) > 0,
            ),
        )
    initial_epoch = 0
    if start is not None:
        training_state.restore(model, start)
        initial_epoch = start.epoch
    steps_before = optimizer_steps(model)  # 0, or where the continued training stood
    # The NaN guard comes after the logger, so the epoch that went wrong is on record.
    monitor = monitored(cfg.train.checkpoint, *objective, has_validation=len(splits.x_val) > 0)
    best_weights = BestWeights(*monitor) if monitor else None
    early_stop = early_stopping(cfg, objective, has_validation=len(splits.x_val) > 0)
    callbacks = [
        EpochMetrics(len(splits.x_train)),
        MlflowEpochLogger(run),
        NonFiniteLossGuard(cfg.train.lr),
        *[c for c in (best_weights, early_stop, pruner) if c is not None],
        *extra_callbacks,
    ]
    progress = RichProgress(cfg.train.batch_size) if cfg.train.verbose else None
    validation = (
        (splits.x_val, targets(net, splits.y_val, splits.classes)) if len(splits.x_val) else None
    )
    try:
        history = model.fit(
            splits.x_train,
            targets(net, splits.y_train, splits.classes),
            batch_size=cfg.train.batch_size,
            initial_epoch=initial_epoch,
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
    last_epoch = initial_epoch + len(history.history.get("loss", []))
    if keep_last_state is not None:
        keep_last_state(training_state.capture(model, last_epoch))
    kept_epoch = (best_weights.restore() if best_weights else None) or last_epoch
    test = main_head_logs(
        model.evaluate(
            splits.x_test,
            targets(net, splits.y_test, splits.classes),
            batch_size=evaluation_batch(cfg),
            return_dict=True,
            verbose=0,
        )
    )
    not_trained = not_trained_reason(history.history, splits.classes, test["loss"])
    run.set_tags(trained_tags(not_trained))
    run.log_text(
        json.dumps(
            encode_correct(
                correct_flags(model, splits.x_test, splits.y_test, evaluation_batch(cfg))
            )
        ),
        CORRECT_ARTIFACT,
    )
    best_val, best_at = best_epoch(history.history, initial_epoch)
    final = {
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "train_steps": optimizer_steps(model) - steps_before,
    }  # this run's own steps
    improving = improvement_last_quarter(history.history)
    if improving is not None:
        final["train_error_drop_last_quarter"] = improving
    if start is not None:
        final.update(initial_epoch=initial_epoch, initial_train_steps=steps_before)
    if best_val is not None:
        final.update(best_val_accuracy=best_val, best_epoch=best_at)
    epochs = history.history.get("epoch_seconds", [])
    final["epochs_trained"] = len(history.history.get("loss", []))  # this run's own, as train_steps
    if epochs:
        final["epoch_seconds_median"] = float(
            np.median(epochs)
        )  # what `task=report` compares per epoch
    if len(epochs) > 1:
        final["compile_seconds"] = compile_seconds(epochs)
    if early_stop is not None and early_stop.stopped_epoch is not None:
        final["stopped_epoch"] = early_stop.stopped_epoch
    pruned_at = pruner.pruned_at if pruner is not None else None
    if pruned_at is not None:
        final["pruned_at_epoch"] = pruned_at
        run.set_tags({PRUNED_TAG: str(pruned_at)})
    if cfg.train.checkpoint is not Checkpoint.none and pruned_at is None:
        logged = log_model(run, model, splits.x_test, cfg.data.downsample)
        final.update(
            checkpoint_epoch=kept_epoch, model_log_seconds=logged.seconds, model_bytes=logged.bytes
        )
        run.set_tags(
            {
                MODEL_URI_TAG: logged.uri,
                "lab.checkpoint": f"{cfg.train.checkpoint.value}, epoch {kept_epoch}",
            }
        )
    run.log_metrics(final)
    return TrainResult(
        run.run_id,
        run.experiment_id,
        history.history,
        test["loss"],
        test["accuracy"],
        best_val,
        best_at,
        dict(analysis.totals),
        pruned_at,
        pruner.best if pruned_at is not None else None,
        not_trained,
    )


def run_name(cfg: RunConfig) -> str:
    return cfg.tracking.run_name or f"{cfg.model.name}-{cfg.data.name}-seed{cfg.seed}"


def run_tags(cfg: RunConfig, task: str) -> Dict[str, str]:
    retrained = {"lab.from_run": cfg.from_run} if cfg.from_run else {}
    return {
        "lab.task": task,
        **runtime.provenance_tags(),
        "lab.model": cfg.model.name,
        "lab.family": cfg.model.family,
        **retrained,
    }


def train(cfg: RunConfig) -> TrainResult:
    """Seeds, loads data, builds, compiles, fits and tests; everything goes to one MLflow run.

    Example:
        >>> from lab.config import run_config
        >>> result = train(run_config(["data=synthetic", "train.epochs=1", "model=resnet20"]))
        >>> 0.0 <= result.test_accuracy <= 1.0
        True
    """
    runtime.configure(cfg.train)
    splits = load_splits(cfg.data, cfg.seed)  # a bad data path or file fails before any run exists
    net = seeded_network(
        cfg, splits
    )  # so does a network that cannot be built, or weights that do not fit it
    with tracked_run(cfg.tracking, run_name(cfg), run_tags(cfg, "train")) as run:
        run.log_params(run_params(cfg))
        run.log_text(config_yaml(cfg), "config.yaml")
        return fit_and_evaluate(cfg, splits, run, net=net)
