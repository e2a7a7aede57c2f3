"""Layers import downward only (the order is written once, in ``LAYERS`` below and in docs/code_layout.md).
A package's ``__main__`` module (its ``python -m`` command line) is an entry point.

Every module of src/ and every entry point is parsed (imports inside functions included) and
each ``src.*`` import is checked against the layer order: a module may import its own layer
and the layers below it, never one above. Within a layer the imports must not form a cycle either
(src.config imports src.cli, so src.cli may import nothing of src.config).
"""
import ast
import glob
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# lowest first; a module name belongs to the first layer with a matching prefix
LAYERS = [
    ("foundation", ("src.errors", "src.cli", "src.config", "src.io", "src.progress", "src.device")),
    ("data", ("src.data", "src.cloud")),
    ("models and metrics", ("src.models", "src.metrics", "src.baselines")),
    ("checkpoint, prediction, export", ("src.checkpoint", "src.predictor", "src.export", "src.visualize")),
    ("evaluation loop", ("src.evaluation",)),
    ("evaluation report", ("src.eval_report", "src.onnx_evaluation")),
    ("training", ("src.training",)),
    ("entry points", ("train", "eval", "eval_onnx", "export", "predict", "preprocess", "postprocess")),
]


def layer_of(module):
    if module.endswith(".__main__"):  # the command line of a package (python -m src.x): an entry point
        return len(LAYERS) - 1
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def module_name(path):
    rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def imported_modules(path):
    """Every ``src.*`` module imported anywhere in the file (``from src.x import y`` -> src.x,
    and src.x.y too when y is a submodule)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("src"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src") and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if os.path.exists(os.path.join(REPO, *f"{node.module}.{alias.name}".split("."))))
    return found


def project_files():
    files = glob.glob(os.path.join(REPO, "src", "**", "*.py"), recursive=True)
    return sorted(files + [p for p in glob.glob(os.path.join(REPO, "*.py"))])


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in project_files() if layer_of(module_name(p)) is None
                and module_name(p) not in ("src",)]
    assert not unplaced, f"modules without a layer in tests/test_layers.py LAYERS: {unplaced}"


@pytest.mark.parametrize("path", project_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_imports_go_downward_only(path):
    own = layer_of(module_name(path))
    if own is None:
        return
    upward = [(m, LAYERS[layer_of(m)][0]) for m in sorted(imported_modules(path))
              if layer_of(m) is not None and layer_of(m) > own]
    assert not upward, f"{module_name(path)} ({LAYERS[own][0]}) imports from layers above it: {upward}"


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from src.training.trainer import Trainer\n    return Trainer\n")
    assert "src.training.trainer" in imported_modules(str(bad))
    assert layer_of("src.training.trainer") > layer_of("src.evaluation")


def import_graph():
    """module -> the project modules it imports (anywhere in the file)."""
    modules = {module_name(p): p for p in project_files()}
    return {name: {m for m in imported_modules(path) if m in modules and m != name}
            for name, path in modules.items()}


def find_cycle(graph):
    """One import cycle of ``graph`` (module -> imported modules) as [a, b, ..., a], or None."""
    done, path = set(), []

    def visit(node):
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"y"}}) == ["y", "z", "y"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle


def test_the_graph_holds_imports_inside_functions(tmp_path):
    """The import inside ``run_cli`` that once tied src.errors and src.config together is an edge."""
    late = tmp_path / "late.py"
    late.write_text("def main():\n    from src.config import load_config\n    return load_config\n")
    assert "src.config" in imported_modules(str(late))
    graph = import_graph()
    assert "src.cli" in graph["src.config"]  # config parses the command line with src.cli
