"""The docs stay true: README.md and docs/*.md link only to what exists, every `python run.py`
command they show composes to a checked RunConfig (nothing is trained; composing imports no Keras),
every page can be reached, and the README fits on a screen or two.

CI runs this file with the rest of the suite (the README's test command), so a broken link, a
renamed key or a misspelt option in a documented command fails CI.
"""

import dataclasses
import itertools
import os
import re
import shlex
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from lab.config import PROJECT_ROOT, RunConfig, run_config

sys.path.insert(0, str(PROJECT_ROOT))  # run.py is a script at the root, not part of the package

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.S | re.M)
SHELL_BLOCKS = {
    "bash",
    "sh",
    "shell",
    "console",
}  # commands; ```text blocks are output, not checked
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)

INTERPRETERS = {"python", "python3", ".venv/bin/python"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# Hydra's own command-line flags (`python run.py --help` lists them): the ones that take a value,
# and the ones that do not. They change what Hydra does with the config, not what is composed.
HYDRA_FLAGS_WITH_VALUE = {
    "-sc",
    "--shell-completion",
    "--cfg",
    "-c",
    "--package",
    "-p",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
}
HYDRA_FLAGS = {
    "-m",
    "--multirun",
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--resolve",
    "--info",
    "-i",
}
# The placeholders a documented command may hold, and what the test puts in their place. Docs
# prefer concrete values; these stand for what only the reader's own store has.
PLACEHOLDERS = {
    "RUN_ID": "0123456789abcdef0123456789abcdef",  # an MLflow run id
    "NAME": "my_model",  # a registered model's name (models:/NAME@best)
}
SHELL_VARIABLES = {"HOME": "/home/reader"}  # expanded as the shell would, before run.py sees them
LEFT_OVER_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")
# Paths under these folders, from the repository root, must exist wherever a page names them
# (prose, code or tables); those listed below are written by a command, not shipped.
REPOSITORY_PATH = re.compile(
    r"(?<![\w./~-])((?:lab|conf|experiments|bench|results|tests|docs|\.ci)/[\w./-]*)"
)
WRITTEN_BY_COMMANDS = {"bench/results/"}


def page_name(page: Path) -> str:
    return str(page.relative_to(PROJECT_ROOT))


def without_code(text: str) -> str:
    """The prose of a page: fenced blocks and inline code removed (a link there is not a link)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


# --- links -------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text as rendered (code, links and emphasis marks gone),
    lowercased, punctuation other than '-' and '_' dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set:
    """Every heading's anchor, with GitHub's -1, -2 ... for repeated headings."""
    seen, found = {}, set()
    for _, heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path):
    for match in LINK.finditer(without_code(page.read_text())):
        yield match.group(1)


def all_links():
    return [(page, target) for page in PAGES for target in links(page)]


def test_the_pages_exist_and_have_links():
    assert README.is_file() and (DOCS / "index.md").is_file()
    assert len(PAGES) >= 3 and len(all_links()) > 20


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_link_resolves_to_a_file_and_a_heading_there(page):
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # a scheme: only the web, well-formed
            parts = urllib.parse.urlsplit(target)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in target:
                bad.append(f"{target}: not a well-formed http(s) link")
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / urllib.parse.unquote(path)).resolve() if path else page
        if PROJECT_ROOT.resolve() not in [resolved, *resolved.parents]:
            bad.append(f"{target}: outside the repository")
        elif not resolved.exists():
            bad.append(f"{target}: {resolved.relative_to(PROJECT_ROOT.resolve())} does not exist")
        elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
            bad.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not bad, f"{page_name(page)}:\n" + "\n".join(bad)


def test_slugs_follow_githubs_rules():
    assert (
        slug("Scaling out: distributed sweeps (`search.distributed`)")
        == "scaling-out-distributed-sweeps-searchdistributed"
    )
    assert (
        slug("How a verdict is reached, and how often it is wrong")
        == "how-a-verdict-is-reached-and-how-often-it-is-wrong"
    )
    assert (
        slug("Kept models (`train.checkpoint`, `task=evaluate`)")
        == "kept-models-traincheckpoint-taskevaluate"
    )
    assert slug("What a_b **bold** [link](x.md) does") == "what-a_b-bold-link-does"


def test_every_docs_page_is_linked_from_the_readme_and_the_contents():
    def linked_pages(page):
        return {
            (page.parent / t.partition("#")[0]).resolve()
            for t in links(page)
            if t.partition("#")[0]
        }

    pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert not pages - linked_pages(README), "pages the README does not link"
    assert not pages - {(DOCS / "index.md").resolve()} - linked_pages(DOCS / "index.md"), (
        "pages docs/index.md does not list"
    )


def test_the_readme_fits_on_a_screen_or_two():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move detail into docs/"
    )


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_repository_path_the_docs_name_exists(page):
    """`lab/tasks/ui.py`, `results/cpu/suite_time.md`, ...: a renamed or removed file is noticed.
    A path that goes on into a pattern or a placeholder (`conf/model/*.yaml`, `.../NAME/`) is
    checked up to its last real folder."""
    missing = set()
    for path in REPOSITORY_PATH.findall(page.read_text()):
        path = re.sub(r"[.,:]+$", "", path)
        if re.search(r"/[A-Z][A-Z0-9_]{2,}", path):
            path = re.split(r"(?<=/)[A-Z][A-Z0-9_]{2,}", path)[0]
        if (
            path not in WRITTEN_BY_COMMANDS
            and not (PROJECT_ROOT / path).exists()
            and not user_file(path)
        ):
            missing.add(path)
    assert not missing, f"{page_name(page)} names files that do not exist: {sorted(missing)}"


def test_the_layouts_file_names_are_files_of_the_repository():
    """docs/architecture.md names the lab's files by their bare names (`resnet.py`, `grid.yaml`)."""
    layout = "".join(text for _, text, _ in code_blocks(DOCS / "architecture.md"))
    named = set(re.findall(r"(?<![\w.])(\w+\.(?:py|yaml|sh))\b", layout))
    shipped = {
        p.name
        for folder in ("lab", "conf", "tests", "bench")
        for p in (PROJECT_ROOT / folder).rglob("*")
    }
    shipped |= {p.name for p in PROJECT_ROOT.glob("*.py")}
    assert len(named) > 50 and not named - shipped, (
        f"docs/architecture.md names files that do not exist: {named - shipped}"
    )


def test_the_reproductions_name_result_files_that_exist():
    reproductions = (DOCS / "verdicts.md").read_text().split("## Reproductions", 1)[1]
    named = set(re.findall(r"^\| `(\w+\.md)`", reproductions, flags=re.M))
    missing = sorted(
        name for name in named if not (PROJECT_ROOT / "results" / "cpu" / name).is_file()
    )
    assert len(named) >= 9 and not missing, (
        f"docs/verdicts.md's reproductions name result files that do not exist: {missing}"
    )


# --- commands ----------------------------------------------------------------------------------


def code_blocks(page: Path):
    """(language, text, the paragraph before it) of every fenced block of a page."""
    text = page.read_text()
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
        yield match.group(1), match.group(2), before


def user_files():
    """The experiment files the docs ask the reader to write (`experiments/NAME.yaml` named just
    before a ```yaml block, where the repository has no such file): {name: text}."""
    files = {}
    for page in PAGES:
        for language, text, before in code_blocks(page):
            named = re.findall(r"experiments/(\w+)\.yaml", before)
            if (
                language == "yaml"
                and named
                and not (PROJECT_ROOT / "experiments" / f"{named[-1]}.yaml").exists()
            ):
                files[named[-1]] = text
    return files


def user_file(path: str) -> bool:
    match = re.fullmatch(r"experiments/(\w+)\.yaml", path)
    return bool(match) and match.group(1) in user_files()


def shell_lines(text: str):
    """A shell block's command lines: continuations joined, comments and blank lines dropped."""
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def simple_commands(line: str):
    """The simple commands of a shell line, as word lists: split at `&&`, `||`, `|` and `;`, a
    `$(...)` command substitution read as a command of its own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    command = []
    for word in lexer:
        if set(word) <= set(";&|"):
            yield command
            command = []
        elif word.startswith("$(") and word.endswith(")"):
            yield from simple_commands(word[2:-1])
        else:
            command.append(word)
    yield command


def run_py_arguments(words):
    """A `python run.py ARGS` command's ARGS (after any `VAR=value` environment prefix); None for
    any other command."""
    while words and ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    if len(words) >= 2 and words[0] in INTERPRETERS and words[1] == "run.py":
        return words[2:]
    return None


def documented_commands():
    """(page, how it was shown, run.py's arguments) for every run.py command in the docs: each line
    of a shell block, and each inline code span that is such a command."""
    found = []
    for page in PAGES:
        for language, text, _ in code_blocks(page):
            if language in SHELL_BLOCKS:
                for line in shell_lines(text):
                    for words in simple_commands(line):
                        arguments = run_py_arguments(words)
                        if arguments is not None:
                            found.append((page, line.strip(), arguments))
                        else:
                            assert "run.py" not in " ".join(words), (
                                f"{page_name(page)}: cannot read {line!r}"
                            )
        for _, span in INLINE_CODE.findall(FENCE.sub("", page.read_text())):
            if "run.py" in span and re.match(
                r"^(\S+=\S+\s+)*(python3?|\.venv/bin/python) run\.py\b", span
            ):
                for words in simple_commands(span):
                    arguments = run_py_arguments(words)
                    if arguments is not None:
                        found.append((page, span, arguments))
    return found


def composable(arguments):
    """The override lists one documented command stands for: Hydra's flags dropped, placeholders
    and shell variables filled in, and a multirun's sweeps (`seed=0,1,2`) expanded.

    Returns (override lists, from_run's value or None)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from run import with_main_job

    overrides, multirun, skip = [], False, False
    for word in with_main_job(["run.py", *arguments])[1:]:
        if skip:
            skip = False
        elif word in HYDRA_FLAGS_WITH_VALUE:
            skip = True
        elif word in HYDRA_FLAGS or word.startswith("--"):
            multirun |= word in ("-m", "--multirun")
            assert word in HYDRA_FLAGS, f"unknown flag {word}"
        else:
            overrides.append(word)
    filled = []
    for override in overrides:
        for name, value in PLACEHOLDERS.items():
            override = re.sub(rf"\b{name}\b", value, override)
        for name, value in SHELL_VARIABLES.items():
            override = override.replace(f"${name}", value)
        assert "$" not in override and not LEFT_OVER_PLACEHOLDER.search(
            override.partition("=")[2]
        ), (
            f"{override}: a placeholder the test does not know (use a concrete value, or add it to PLACEHOLDERS)"
        )
        filled.append(override)
    from_run = next((o.partition("=")[2] for o in filled if o.startswith("from_run=")), None)
    filled = [
        o for o in filled if not o.startswith("from_run=")
    ]  # it reads the recorded run from MLflow
    if not multirun:
        return [filled], from_run
    parsed = OverridesParser.create().parse_overrides(filled)
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [text]
        for o, text in zip(parsed, filled)
    ]
    return [list(combination) for combination in itertools.product(*choices)], from_run


@pytest.fixture(scope="module")
def user_experiments(tmp_path_factory):
    """The docs' own experiment files, in a config folder Hydra searches (as `experiments/` would)."""
    folder = tmp_path_factory.mktemp("docs_conf")
    (folder / "experiment").mkdir()
    for name, text in user_files().items():
        (folder / "experiment" / f"{name}.yaml").write_text(text + "\n")
    return folder, set(user_files())


def test_the_docs_show_run_py_commands():
    commands = documented_commands()
    assert len(commands) >= 50 and any(page == README for page, _, _ in commands)


def test_every_documented_run_py_command_composes_to_a_checked_config(user_experiments):
    """Each command as `python run.py` would compose it (quick mode and the main job included),
    turned into the typed, range-checked RunConfig: a typo or a bad value fails here. A command
    shown on several pages is composed once."""
    from hydra import initialize_config_dir

    from lab.config import CONF_DIR

    folder, names = user_experiments
    outcome = {}  # overrides -> None (composed) or the error's first line
    failures = []
    # one Hydra context for all
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for page, shown, arguments in documented_commands():
            try:
                runs, from_run = composable(arguments)
            except AssertionError as error:
                failures.append(f"{page_name(page)}: {shown}\n    {error}")
                continue
            for overrides in runs:
                if any(
                    o.startswith("experiment=") and o.partition("=")[2] in names for o in overrides
                ):
                    overrides = [f"hydra.searchpath=[file://{folder}]", *overrides]
                if tuple(overrides) not in outcome:
                    try:
                        cfg = run_config(overrides)
                        assert from_run is None or (
                            from_run == PLACEHOLDERS["RUN_ID"] and cfg.task.value == "train"
                        ), "from_run=RUN_ID goes with task=train"
                        outcome[tuple(overrides)] = None
                    except Exception as error:
                        outcome[tuple(overrides)] = (
                            f"{type(error).__name__}: {str(error).splitlines()[0]}"
                        )
                if outcome[tuple(overrides)] is not None:
                    failures.append(f"{page_name(page)}: {shown}\n    {outcome[tuple(overrides)]}")
    assert not failures, f"{len(failures)} documented commands do not compose:\n" + "\n".join(
        failures
    )
    assert len(outcome) >= 40


def test_from_run_is_a_key_of_the_run_config():
    assert "from_run" in {f.name for f in dataclasses.fields(RunConfig)}


def test_the_readmes_own_ablation_is_a_user_file_that_composes_to_its_grid(user_experiments):
    folder, names = user_experiments
    assert (
        "my_ablation" in names and not (PROJECT_ROOT / "experiments" / "my_ablation.yaml").exists()
    )
    cfg = run_config(
        [f"hydra.searchpath=[file://{folder}]", "experiment=my_ablation", "quick=true"]
    )
    assert (
        cfg.task.value == "search"
        and cfg.search.name == "my_ablation_quick"
        and cfg.model.name == "lenet5"
    )
    assert [axis.name for axis in cfg.search.space] == ["dropout", "seed"]


def test_experiment_files_shown_in_the_docs_are_the_files_in_the_repository():
    """A ```yaml block after `experiments/NAME.yaml` (a file that exists) shows that file, its
    comments aside."""

    def meaningful(text):
        return [
            line.rstrip()
            for line in text.splitlines()
            if line.strip() and (not line.lstrip().startswith("#") or "@package" in line)
        ]

    shown = 0
    for page in PAGES:
        for language, text, before in code_blocks(page):
            named = re.findall(r"experiments/(\w+)\.yaml", before)
            path = PROJECT_ROOT / "experiments" / f"{named[-1]}.yaml" if named else None
            if language == "yaml" and path is not None and path.exists():
                assert meaningful(text) == meaningful(path.read_text()), (
                    f"{page_name(page)} shows {path.name} as it was"
                )
                shown += 1
    assert shown >= 1


def pytest_marker_expressions():
    """The `-m EXPRESSION` of every pytest command in a shell block or inline code."""
    for page in PAGES:
        text = page.read_text()
        lines = [
            line
            for language, block, _ in code_blocks(page)
            if language in SHELL_BLOCKS
            for line in shell_lines(block)
        ]
        lines += [span for _, span in INLINE_CODE.findall(FENCE.sub("", text)) if "pytest" in span]
        for line in lines:
            for words in simple_commands(line):
                if "pytest" in words:
                    after = words[words.index("pytest") + 1 :]
                    yield from (after[i + 1] for i, word in enumerate(after[:-1]) if word == "-m")


def test_pytest_markers_the_docs_use_exist():
    import tomllib

    markers = {
        m.split(":")[0]
        for m in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
            "ini_options"
        ]["markers"]
    }
    used = {
        name
        for expression in pytest_marker_expressions()
        for name in re.findall(r"\w+", expression)
    }
    used -= {"and", "or", "not"}
    assert {"slow", "core"} <= used and used <= markers, (
        f"markers the docs use that pyproject.toml does not declare: {used - markers}"
    )


# --- tab completion ----------------------------------------------------------------------------


def completion(line: str) -> list:
    """What Hydra's bash completion offers for `line` (the query its installed script makes)."""
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    out = subprocess.run(
        [sys.executable, "run.py", "-sc", "query=bash"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.split()


def test_the_documented_completion_install_prints_a_bash_script():
    shown = [
        arguments
        for _, _, arguments in documented_commands()
        if arguments[:2] == ["-sc", "install=bash"]
    ]
    assert shown, "the docs show how to install tab completion"
    out = subprocess.run(
        [sys.executable, "run.py", "-sc", "install=bash"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        out.returncode == 0 and "complete" in out.stdout and "hydra_bash_completion" in out.stdout
    )


def test_completion_offers_groups_options_and_keys_but_not_task_values():
    """What docs/config.md says completes, and what does not."""
    assert "model=wrn_16_8" in completion("python run.py model=wrn")
    assert "experiment=plain_vs_residual" in completion("python run.py experiment=")
    assert "train.epochs=" in completion("python run.py train.ep")
    assert completion("python run.py task=") == ["task=train"]  # the current value only
