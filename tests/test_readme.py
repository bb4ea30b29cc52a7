"""The README's quick start stays true: CI runs its test command, and the main job exists."""

import re

from lab.config import PROJECT_ROOT, compose, to_run_config


def readme_commands():
    text = (PROJECT_ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start, flags=re.S)


def test_quick_start_is_two_commands():
    commands = readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci if not line.startswith("#")]


def test_main_job_composes():
    setup = readme_commands()[0]
    job = setup.rsplit("&&", 1)[1].split()
    assert job[:2] == [".venv/bin/python", "run.py"]
    cfg = to_run_config(compose(job[2:]))
    assert (cfg.model.name, cfg.data.name) == ("resnet20", "fashion_mnist")
