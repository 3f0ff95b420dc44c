"""Runtime and development dependencies apart (issue 27): requirements.txt is what the
product runs with (the Docker image installs only it), requirements-dev.txt adds the test,
lint and demo tools on top of it. Every import of the package, the DAG files and the plugin
resolves to a distribution requirements.txt pins, and pyproject.toml's ranges hold the pins.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
DEV_TOOLS = ("pytest", "playwright", "ruff", "mypy", "hypothesis", "types-", "aiosmtpd")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(name: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (REPO / name).read_text().splitlines():
        if line and not line.startswith(("#", "-r ")):
            assert "==" in line, f"{name}: {line!r} is not pinned"
            dist, version = line.split("==")
            found[norm(dist)] = version
    return found


RUNTIME = pins("requirements.txt")
DEV = pins("requirements-dev.txt")


def test_requirements_txt_holds_no_test_or_lint_tool():
    assert [d for d in RUNTIME if d.startswith(DEV_TOOLS)] == []


def test_requirements_dev_txt_is_the_runtime_set_plus_the_tools():
    lines = [ln for ln in (REPO / "requirements-dev.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines[0] == "-r requirements.txt"
    assert set(DEV) & set(RUNTIME) == set()
    assert {"pytest", "ruff", "mypy", "hypothesis", "playwright"} <= set(DEV)


def imported_modules() -> set[str]:
    files = [*(REPO / "include" / "incident_ops").rglob("*.py"),
             *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py")]
    modules: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return {m for m in modules
            if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "incident_ops"}


@cache
def distributions_of(module: str) -> set[str]:
    """apache-airflow-providers-<name> for airflow.providers.<name>; else who installs the
    module's top-level package in this environment."""
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        return {f"apache-airflow-providers-{parts[2]}",
                norm(f"apache-airflow-providers-{'-'.join(parts[2:4])}")}
    return {norm(d) for d in installed().get(parts[0], [])}


@cache
def installed() -> dict[str, list[str]]:
    return dict(packages_distributions())


def test_every_import_of_the_product_resolves_to_a_runtime_pin():
    modules = imported_modules()
    assert {"airflow.sdk", "yaml", "pandas"} <= modules  # the walk sees the imports
    unpinned = {m: sorted(distributions_of(m)) for m in sorted(modules)
                if not distributions_of(m) & set(RUNTIME)}
    assert unpinned == {}


def test_the_s3_store_needs_are_runtime_pins_and_its_test_server_is_a_dev_one():
    """An s3:// artefact store imports nothing of ours from them (ObjectStoragePath finds
    the filesystem by its scheme), so the import walk cannot see them: named here."""
    assert {"apache-airflow-providers-amazon", "s3fs"} <= set(RUNTIME)
    assert "moto" in DEV and "moto" not in RUNTIME


def test_pyproject_ranges_hold_the_pins_and_stop_at_the_next_major():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = [*project["dependencies"], *extras["fab"], *extras["s3"]]
    for line in declared:
        req = Requirement(line)
        assert norm(req.name) in RUNTIME, f"{req.name} is not pinned in requirements.txt"
        assert req.specifier.contains(RUNTIME[norm(req.name)]), (line, RUNTIME[norm(req.name)])
        assert any(s.operator == "<" for s in req.specifier), f"{line}: no upper bound"
