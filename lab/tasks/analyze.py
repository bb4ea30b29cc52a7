"""`task=analyze`: a network's layers counted (parameters, MACs, activations, receptive field)
without training it; the table printed and `analysis.json` written."""

from __future__ import annotations

from lab.config import RunConfig
from lab.config.command_line import command_line_keys, output_dir


def data_on_command_line() -> bool:
    """Whether the user chose `data=...` (Hydra's task overrides), as opposed to the default."""
    return "data" in command_line_keys()


def run(cfg: RunConfig) -> None:
    from lab.data import input_spec
    from lab.models import build_model
    from lab.models.analysis import analyze_model, render_table

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
