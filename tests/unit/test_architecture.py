"""The import rule of the house (ARCHITECTURE.md), checked on the source, not trusted.

- ``policy/``, ``model.py`` and ``reference.py`` are pure: no Airflow, no desk adapter, no
  configuration loading, no file, network or process access;
- only ``incident_ops/airflow`` imports Airflow (the DAG files are wiring on top of it);
- inside it, the wings import each other without a cycle, ``names.py`` is a leaf and the web
  pages never import the task bodies (``web`` ↛ ``tasks``);
- no two classes share a name across the package (a newcomer greps one and finds one).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "incident_ops"

PURE = [*sorted((PACKAGE / "policy").glob("*.py")), PACKAGE / "model.py",
        PACKAGE / "reference.py"]
# What pure code may import: the standard library's computing modules, itself, and two
# libraries that compute without touching the outside (schema checks, the holiday data).
PURE_OK = {"__future__", "collections", "dataclasses", "datetime", "enum", "functools",
           "base64", "hashlib", "hmac", "itertools", "json", "math", "re", "shlex",
           "statistics", "typing",
           "zoneinfo", "bisect", "heapq", "decimal", "fractions", "string", "textwrap",
           "unicodedata", "jsonschema", "holidays", "incident_ops.model",
           "incident_ops.reference", "incident_ops.policy", "incident_ops.text"}
IO_CALLS = {"open", "input", "exec", "eval", "__import__"}


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
    return found


def allowed(module: str, names: list[str]) -> bool:
    if module == "pathlib":  # pure path arithmetic only, never a filesystem Path
        return all(n.startswith("Pure") for n in names)
    return any(module == ok or module.startswith(ok + ".") for ok in PURE_OK)


def test_policy_model_and_reference_import_nothing_that_does_io():
    problems = []
    for path in PURE:
        for module, names in imports(path):
            if not allowed(module, names):
                problems.append(f"{path.relative_to(PACKAGE)} imports {module} {names or ''}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in IO_CALLS:
                problems.append(f"{path.relative_to(PACKAGE)}:{node.lineno} calls "
                                f"{node.func.id}()")
    assert problems == []


def test_only_the_airflow_layer_imports_airflow():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "airflow") in path.parents:
            continue
        for module, _ in imports(path):
            if module == "airflow" or module.startswith("airflow."):
                problems.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert problems == []


def test_no_two_classes_share_a_name():
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(path.relative_to(PACKAGE)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}


def test_no_two_modules_share_a_name_across_the_layers():
    """A reader who opens "closure.py" finds one (policy, fetch and Airflow task bodies once
    were three closure.py modules)."""
    names: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name not in ("__init__.py", "__main__.py"):  # entry points: named by package
            names[path.name].append(str(path.relative_to(PACKAGE)))
    assert {n: files for n, files in names.items() if len(files) > 1} == {}


AIRFLOW = PACKAGE / "airflow"


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> list[str]:
    """The modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks left out); a
    ``from package import module`` counts as importing the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{a.name}" for a in node.names]
    return found


def _airflow_graph() -> dict[str, set[str]]:
    modules = {_module_of(p): p for p in AIRFLOW.rglob("*.py")}
    return {name: {m for m in _runtime_imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_the_airflow_wings_import_each_other_without_a_cycle():
    graph = _airflow_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_names_is_a_leaf_of_the_airflow_layer():
    assert [m for m in _runtime_imports(AIRFLOW / "names.py")
            if m.startswith("incident_ops")] == []


def test_the_web_pages_never_import_the_task_bodies():
    problems = [f"{p.relative_to(PACKAGE)} imports {m}"
                for p in sorted((AIRFLOW / "web").rglob("*.py"))
                for m in _runtime_imports(p) if m.startswith("incident_ops.airflow.tasks")]
    assert problems == []
