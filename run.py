"""The lab's entry point: `python run.py task=train model=resnet20 data=fashion_mnist [key=value ...]`.

Hydra composes `conf/config.yaml` with the overrides (and `-m` sweeps over them); the work
itself lives in `lab/`, where tests import it.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from lab.config import register_configs  # noqa: E402
from lab.errors import LabError  # noqa: E402

register_configs()

# `python run.py` with no arguments runs the main job: the plain-vs-residual ablation, quick mode.
MAIN_JOB = ["experiment=plain_vs_residual", "quick=true"]


def with_main_job(argv):
    """argv with the main job's overrides when no argument was given."""
    return argv + MAIN_JOB if len(argv) == 1 else argv


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    from lab.tasks import run_task  # noqa: PLC0415

    try:
        return run_task(cfg)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    sys.argv = with_main_job(sys.argv)
    main()
