"""The tree is the architecture: the layers of lab/ and what each may import, the modules that
stay free of the frameworks, the size of units, and docs/architecture.md listing every module.
docs/architecture.md draws what this file holds."""

import ast
import re
import subprocess
import sys
from fnmatch import fnmatchcase

import pytest

from lab.config import PROJECT_ROOT

LAB = PROJECT_ROOT / "lab"
PAGE = PROJECT_ROOT / "docs" / "architecture.md"

# The layers, bottom up. A module may import its own layer and the layers below it, never above.
LAYERS = {
    "foundation": [
        "lab",
        "lab.errors",
        "lab.config",
        "lab.config.*",
        "lab.compat",
        "lab.compat.*",
        "lab.stats",
        "lab.stats.*",
        "lab.runtime",
        # plain strings: the tags the lab writes, what a tracking.uri names
        "lab.tracking.tags",
        "lab.tracking.uris",
        # each family's spec is part of the Hydra schema the config is checked against
        "lab.models.specs",
        "lab.models.specs.*",
    ],
    "domain": [
        "lab.data",
        "lab.data.*",
        "lab.models",
        "lab.models.*",
        "lab.training",
        "lab.training.*",
        "lab.tracking",
        "lab.tracking.*",
        "lab.verdicts",
        "lab.verdicts.*",
    ],
    "tasks": ["lab.tasks", "lab.tasks.*"],
}
ORDER = list(LAYERS)
# Where a lower layer may reach up, and why: none today.
REACHING_UP = set()
# The compat modules wrap one framework each and import nothing of the lab but its errors.
COMPAT_MAY_IMPORT = {"lab.errors"}
# Rooms (lab.tasks.<room>) import no other room; the dispatch and the preflight it runs before
# every task import the rooms, and task=bench measures the search's own path.
ROOM_MAY_IMPORT_ROOM = {("lab.tasks.bench", "lab.tasks.search")}

FRAMEWORKS = ("keras", "tensorflow", "jax", "keras_tuner")
# Modules a config error, task=plan or task=report goes through: importing them (at module
# level, and everything they import there) loads no framework.
FRAMEWORK_FREE = [
    "lab",
    "lab.errors",
    "lab.config",
    "lab.config.*",
    "lab.stats",
    "lab.stats.*",
    "lab.verdicts",
    "lab.verdicts.*",
    "lab.models",
    "lab.models.specs",
    "lab.models.specs.*",
    "lab.data.hdf5",
    "lab.tracking.tags",
    "lab.tracking.uris",
    "lab.training",
    "lab.training.trained",
    "lab.tasks",
    "lab.tasks.preflight",
    "lab.tasks.native_logs",
    "lab.tasks.report",
    "lab.tasks.report.*",
    "lab.tasks.search",
    "lab.tasks.search.plan",
    "lab.tasks.search.ranking",
    "lab.tasks.search.address",
    "lab.tasks.search.space",
    "lab.tasks.search.summary",
    "lab.tasks.ui",
]
MAX_FUNCTION_LINES = 50
MAX_PARAMETERS = 6
MAX_MODULE_LINES = 420


def module_name(path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PATHS = {module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def matches(name, patterns) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def layer_of(name) -> str:
    return next(layer for layer, patterns in LAYERS.items() if matches(name, patterns))


# The dispatch: run.py's entry into the tasks, the checks it runs before any of them, and the
# process's start-up log filter (a search restarting its process restores it).
DISPATCH = {"lab.tasks", "lab.tasks.preflight", "lab.tasks.native_logs"}


def room_of(name):
    parts = name.split(".")
    if name in DISPATCH or len(parts) < 3 or parts[1] != "tasks":
        return None
    return ".".join(parts[:3])


def imports_of(name, module_level_only=False):
    """{lab module or third-party top-level package} that `name` imports: `from lab.x import y`
    names lab.x.y where that is a module, else lab.x."""
    tree = ast.parse(PATHS[name].read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "lab":
                found.add(node.module.split(".")[0])
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in PATHS else node.module)
        elif isinstance(node, ast.Import):
            found.update(
                a.name if a.name.split(".")[0] == "lab" else a.name.split(".")[0]
                for a in node.names
            )
    return found - {name}


def lab_imports(name):
    return {target for target in imports_of(name) if target in PATHS}


def test_every_module_has_a_layer():
    assert [name for name in PATHS if not any(matches(name, p) for p in LAYERS.values())] == []


def test_no_layer_imports_a_layer_above_it():
    upward = [
        (name, target)
        for name in PATHS
        for target in lab_imports(name)
        if ORDER.index(layer_of(target)) > ORDER.index(layer_of(name))
    ]
    assert sorted(set(upward) - REACHING_UP) == []
    assert REACHING_UP <= set(upward), "an exception no longer needed: remove it"


def test_compat_imports_nothing_of_the_lab_but_its_errors():
    assert {
        name: lab_imports(name) - COMPAT_MAY_IMPORT
        for name in PATHS
        if name.startswith("lab.compat.") and lab_imports(name) - COMPAT_MAY_IMPORT
    } == {}


def test_no_room_imports_another():
    crossing = {
        (room_of(name), room_of(target))
        for name in PATHS
        for target in lab_imports(name)
        if room_of(name) and room_of(target) and room_of(name) != room_of(target)
    }
    assert crossing == ROOM_MAY_IMPORT_ROOM


def module_level_closure(name):
    seen, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        targets = imports_of(current, module_level_only=True)
        parents = [".".join(current.split(".")[:i]) for i in range(1, current.count(".") + 1)]
        pending.extend(t for t in [*targets, *parents] if t in PATHS)
    return seen


def framework_free_modules():
    return [name for name in PATHS if matches(name, FRAMEWORK_FREE)]


@pytest.mark.parametrize("name", framework_free_modules())
def test_a_framework_free_module_imports_no_framework_at_module_level(name):
    loaded = {
        module: sorted(set(FRAMEWORKS) & imports_of(module, module_level_only=True))
        for module in module_level_closure(name)
    }
    assert {module: found for module, found in loaded.items() if found} == {}


def test_importing_every_framework_free_module_loads_no_framework():
    """The static walk above, checked once against Python itself."""
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {framework_free_modules()}]; "
        f"print(sorted(m for m in {FRAMEWORKS} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


CLAIM = re.compile(r"(imports|loads) (no|neither) Keras|[Nn]o Keras[,;:.)]|without Keras")


def test_every_module_that_says_it_loads_no_keras_is_held_to_it():
    claiming = [
        name
        for name, path in PATHS.items()
        if CLAIM.search(ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert [name for name in claiming if not matches(name, FRAMEWORK_FREE)] == []


def units():
    for name, path in PATHS.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [
                    x.arg
                    for x in a.posonlyargs + a.args + a.kwonlyargs
                    if x.arg not in ("self", "cls")
                ]
                params += ["*"] * bool(a.vararg) + ["**"] * bool(a.kwarg)
                yield f"{name}.{node.name}", node.end_lineno - node.lineno + 1, len(params)


def test_no_function_is_long_or_takes_many_parameters():
    assert [(n, lines) for n, lines, _ in units() if lines > MAX_FUNCTION_LINES] == []
    assert [(n, count) for n, _, count in units() if count > MAX_PARAMETERS] == []


def test_no_module_is_long():
    assert {
        name: len(path.read_text().splitlines())
        for name, path in PATHS.items()
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    } == {}


def page_blocks():
    """{package folder: the text of its entry} in the page's layout block: an entry starts with
    `lab/...` at the start of a line and runs to the next."""
    block = PAGE.read_text().split("```text", 1)[1].split("```", 1)[0]
    entries = re.split(r"\n(?=\S)", block)
    return {entry.split()[0]: entry for entry in entries if entry.startswith("lab/")}


def test_the_architecture_page_lists_every_module():
    blocks = page_blocks()
    missing = []
    for path in PATHS.values():
        relative = path.relative_to(PROJECT_ROOT)
        folder = f"{relative.parent.as_posix()}/"
        if path.name == "__init__.py":
            if folder not in blocks and relative.as_posix() not in blocks:
                missing.append(folder)
        elif relative.as_posix() not in blocks and not re.search(
            rf"(?<![\w/]){re.escape(path.name)}\b", blocks.get(folder, "")
        ):
            missing.append(relative.as_posix())
    assert missing == []


def test_the_architecture_page_names_only_modules_that_exist():
    named = []
    for folder, text in page_blocks().items():
        if not folder.startswith("lab/"):
            continue
        named.append(folder)
        named += [
            folder + name
            for name in re.findall(r"(?<![\w/.])([a-z_]+\.py)\b", text)
            if (PROJECT_ROOT / folder).is_dir()
        ]
    assert [path for path in named if not (PROJECT_ROOT / path).exists()] == []


def test_tag_names_are_spelled_only_in_tags_py():
    """`lab.tracking.tags` names every tag; elsewhere a tag is its constant."""
    spelled = [
        (name, node.value)
        for name, path in PATHS.items()
        if name != "lab.tracking.tags"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"lab\.[a-z_]+", node.value)
        and node.value not in PATHS
    ]
    assert spelled == []


def test_a_tag_constant_is_read_from_tags_py_not_through_another_module():
    """`runtime.REFERENCE_TAG` would break when the constant moves; pyflakes cannot tell."""
    reached = [
        (name, f"{node.value.id}.{node.attr}")
        for name, path in PATHS.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.endswith("_TAG")
        and isinstance(node.value, ast.Name)
        and node.value.id != "tags"
    ]
    assert reached == []


def test_the_pages_room_table_is_the_dispatchs():
    from lab.tasks import ROOMS

    table = dict(re.findall(r"^\| `(\w+)` \| `(lab/[\w/.]+)`", PAGE.read_text(), flags=re.M))
    as_paths = {}
    for task, module in ROOMS.items():
        path = module.replace(".", "/")
        as_paths[task.value] = f"{path}/" if (PROJECT_ROOT / path).is_dir() else f"{path}.py"
    assert table == as_paths
