"""The lab's modules import each other without cycles (module-level and deferred imports alike),
and the light modules a config error goes through import neither Keras, MLflow nor keras-tuner."""

import ast
import subprocess
import sys

from lab.config import PROJECT_ROOT

LAB = PROJECT_ROOT / "lab"


def module_name(path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lab_imports(path, modules) -> set:
    """The lab modules `path` imports anywhere in its body: `from lab.x import y` names lab.x, or
    lab.x.y where that is a module itself."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "lab"
            and node.level == 0
        ):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "lab")
    return found


def import_graph():
    paths = sorted(LAB.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): lab_imports(p, modules) - {module_name(p)} for p in paths}


def cycles(graph):
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_lab_has_no_import_cycles():
    graph = import_graph()
    assert "lab.compat.keras_tuner" in graph and graph["lab.tasks"]  # the walk sees the modules
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_overrides_and_quick_settings_import_neither_keras_mlflow_nor_keras_tuner():
    code = (
        "import sys; import lab.config.overrides; "
        "print(sorted(m for m in ('keras', 'mlflow', 'keras_tuner', 'tensorflow', 'jax') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
