"""The README's quick start stays true: CI runs its test command, and the main job exists."""

import io
import os
import re
import sys

from lab.config import PROJECT_ROOT, run_config

sys.path.insert(0, str(PROJECT_ROOT))  # run.py is a script at the root, not part of the package


def quick_start_text():
    text = (PROJECT_ROOT / "README.md").read_text()
    return text.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", quick_start_text(), flags=re.S)


def test_quick_start_is_two_commands():
    commands = readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)


def test_ci_runs_the_readme_test_command():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci if not line.startswith("#")]


def test_ci_runs_the_slow_tests_right_after_the_readme_command_and_the_readme_names_them():
    ci = [
        line.strip()
        for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    slow = ".venv/bin/python -m pytest -m slow"
    assert ci[ci.index(readme_commands()[1]) + 1] == slow
    assert f"`{slow}`" in quick_start_text()


def test_the_setup_installs_no_browser_or_database_and_the_readme_says_which_tests_want_them():
    """The first command reaches a result without Chromium or PostgreSQL; the quick start says
    how to get the tests that use them, which CI installs and requires."""
    setup = readme_commands()[0]
    assert "chromium" not in setup and "postgresql" not in setup
    assert "`apt-get install -y chromium chromium-driver postgresql`" in quick_start_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert (
        "chromium chromium-driver postgresql" in ci
        and "LAB_REQUIRE_BROWSER=1 LAB_REQUIRE_POSTGRES=1" in ci
    )


def test_main_job_is_run_py_without_arguments_and_composes_the_quick_ablation():
    from run import MAIN_JOB, with_main_job

    setup = readme_commands()[0]
    assert setup.rsplit("&&", 1)[1].split() == [".venv/bin/python", "run.py"]
    assert with_main_job(["run.py"]) == ["run.py", *MAIN_JOB]
    assert with_main_job(["run.py", "task=train"]) == ["run.py", "task=train"]
    cfg = run_config(MAIN_JOB)
    assert (
        cfg.quick
        and cfg.search.name == "plain_vs_residual_quick"
        and cfg.data.name == "fashion_mnist"
    )
    assert cfg.search.space[0].values == ["plain20", "resnet20", "plain56", "resnet56"]


def test_a_reader_that_stops_early_ends_the_run_quietly_with_141(monkeypatch, capfd):
    """`python run.py task=list | head`: once `head` exits, the lab's next write fails; run.py
    ends with 141 (a shell's SIGPIPE status) and prints no traceback, then or at exit."""
    import run

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    closed = io.TextIOWrapper(io.FileIO(write_end, "w"))
    monkeypatch.setattr(sys, "stdout", closed)
    monkeypatch.setattr(run, "main", lambda: print("a row of the listing\n" * 1000))
    assert run.run() == run.READER_GONE == 141
    print("more, as the interpreter's last flush would write")
    closed.flush()  # goes to /dev/null now: no BrokenPipeError
    assert "Traceback" not in capfd.readouterr().err
