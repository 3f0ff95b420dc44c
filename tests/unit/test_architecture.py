"""The import rule of the house (ARCHITECTURE.md), checked on the source, not trusted.

- ``policy/``, ``model.py`` and ``reference.py`` are pure: no Airflow, no desk adapter, no
  configuration loading, no file, network or process access;
- only ``incident_ops/airflow`` imports Airflow (the DAG files are wiring on top of it);
- the layers below it do not import it: ``engine`` never imports ``incident_ops.airflow``,
  ``desk`` never imports ``engine`` (the engine drives the desk, not the other way);
- ``engine``, ``desk`` and ``embedded_desk`` hold no import cycle (TYPE_CHECKING imports
  included: a reader follows those too);
- inside the Airflow layer, the wings import each other without a cycle at run time (a
  TYPE_CHECKING import may close one), ``names.py`` is a leaf and the web pages never import
  the task bodies (``web`` ↛ ``tasks``);
- the DAG files are wiring: they import the Airflow layer, never policy;
- no two classes share a name across the package (a newcomer greps one and finds one).
- arrows that once ran the wrong way stay gone: config -> reports (through the config
  check), reports -> engine, policy -> config.
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


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


KNOWN = {_module_of(p) for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, *, runtime: bool = False) -> set[str]:
    """The modules ``path`` imports, wherever the import stands (``runtime``: leaving out
    ``if TYPE_CHECKING:`` blocks). ``from a import b`` counts as ``a`` and, when ``a.b`` is a
    module of the package, as ``a.b`` too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if runtime and isinstance(node, ast.If)
               and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & KNOWN
    return found


def arrows(files: list[Path], targets: tuple[str, ...], root: Path = PACKAGE) -> list[str]:
    """``file -> module`` for every import of ``files`` that names one of ``targets`` (a
    module or a package: ``incident_ops.reports`` covers everything under it)."""
    return sorted(f"{path.relative_to(root)} -> {module}" for path in files
                  for module in _imports(path)
                  if any(module == t or module.startswith(t + ".") for t in targets))


def layer(name: str) -> list[Path]:
    return sorted((PACKAGE / name).rglob("*.py"))


def cycles(files: list[Path], *, runtime: bool = False) -> list[str]:
    """Every import cycle among ``files`` (``a -> b -> a``)."""
    graph = {_module_of(p): {m for m in _imports(p, runtime=runtime) if m != _module_of(p)}
             for p in files if p.name != "__init__.py"}
    found: list[str] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node] & graph.keys()):
            if state.get(nxt) == 1:
                found.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


CONFIG = [PACKAGE / "config.py", PACKAGE / "config_schema.py"]
CONFIG_MODULES = ("incident_ops.config", "incident_ops.config_schema",
                  "incident_ops.config_check")


def test_config_does_not_import_reports():
    """Loading the YAML comes below the reports that read it: checking the whole folder
    (which builds the report settings) is ``config_check``'s, above both."""
    assert arrows(CONFIG, ("incident_ops.reports",)) == []


def test_reports_do_not_import_the_engine():
    """Reports read what the engine wrote (on the desk, in the plan's outcomes), by its
    fields, not by importing it."""
    assert arrows(layer("reports"), ("incident_ops.engine",)) == []


def test_policy_does_not_import_config():
    """Policy gets its settings as objects; loading them is the caller's business."""
    assert arrows(layer("policy"), CONFIG_MODULES) == []


def test_the_engine_does_not_import_the_airflow_layer():
    assert arrows(layer("engine"), ("incident_ops.airflow",)) == []


def test_the_desk_does_not_import_the_engine():
    assert arrows(layer("desk"), ("incident_ops.engine",)) == []


def test_the_dag_files_are_wiring_not_policy():
    """The DAG files call the Airflow layer's task bodies; a decision never sits in one."""
    dags = sorted((PACKAGE.parents[1] / "dags").glob("*.py"))
    assert dags
    assert arrows(dags, ("incident_ops.policy",), root=PACKAGE.parents[1]) == []


def test_no_import_cycles_in_the_engine_and_the_desks():
    assert cycles([*layer("engine"), *layer("desk"), *layer("embedded_desk")]) == []


def test_the_airflow_wings_import_each_other_without_a_cycle():
    assert cycles(layer("airflow"), runtime=True) == []


def test_names_is_a_leaf_of_the_airflow_layer():
    assert [m for m in _imports(PACKAGE / "airflow" / "names.py", runtime=True)
            if m.startswith("incident_ops")] == []


def test_the_web_pages_never_import_the_task_bodies():
    assert arrows(layer("airflow/web"), ("incident_ops.airflow.tasks",)) == []
