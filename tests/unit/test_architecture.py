"""The import rule of the house (ARCHITECTURE.md), checked on the source, not trusted.

- ``policy/``, ``model.py`` and ``reference.py`` are pure: no Airflow, no desk adapter, no
  configuration loading, no file, network or process access;
- only ``incident_ops/airflow`` imports Airflow (the DAG files are wiring on top of it);
- the layers below it do not import it: ``engine`` never imports ``incident_ops.airflow``,
  ``desk`` never imports ``engine`` (the engine drives the desk, not the other way);
- ``engine``, ``desk`` and ``embedded_desk`` hold no import cycle (TYPE_CHECKING imports
  included: a reader follows those too);
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


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, wherever the import stands: ``from a import b`` counts
    as both ``a`` and ``a.b`` (b may be a module: ``from incident_ops import config``)."""
    found = set()
    for module, names in imports(path):
        found.add(module)
        found |= {f"{module}.{name}" for name in names}
    return found


def arrows(files: list[Path], targets: tuple[str, ...]) -> list[str]:
    """``file -> module`` for every import of ``files`` that names one of ``targets`` (a
    module or a package: ``incident_ops.reports`` covers everything under it)."""
    return sorted(f"{path.relative_to(PACKAGE)} -> {module}" for path in files
                  for module in imported_modules(path)
                  if any(module == t or module.startswith(t + ".") for t in targets))


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
    assert arrows(sorted((PACKAGE / "reports").rglob("*.py")), ("incident_ops.engine",)) == []


def test_policy_does_not_import_config():
    """Policy gets its settings as objects; loading them is the caller's business."""
    assert arrows(sorted((PACKAGE / "policy").rglob("*.py")), CONFIG_MODULES) == []


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _our_imports(path: Path) -> set[str]:
    """The incident_ops modules a file imports (``from pkg import module`` names the module)."""
    known = {_module_of(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for module, names in imports(path):
        if not module.startswith("incident_ops"):
            continue
        subs = {f"{module}.{n}" for n in names} & known
        found |= subs or {module}
    return found


def _layer_imports(layer: str, forbidden: str) -> list[str]:
    return [f"{path.relative_to(PACKAGE)} imports {module}"
            for path in sorted((PACKAGE / layer).rglob("*.py"))
            for module in sorted(_our_imports(path))
            if module == forbidden or module.startswith(forbidden + ".")]


def test_the_engine_does_not_import_the_airflow_layer():
    assert _layer_imports("engine", "incident_ops.airflow") == []


def test_the_desk_does_not_import_the_engine():
    assert _layer_imports("desk", "incident_ops.engine") == []


def test_no_import_cycles_in_the_engine_and_the_desks():
    files = [p for layer in ("engine", "desk", "embedded_desk")
             for p in sorted((PACKAGE / layer).rglob("*.py")) if p.name != "__init__.py"]
    graph = {_module_of(p): _our_imports(p) for p in files}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt in graph and nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert cycles == []
