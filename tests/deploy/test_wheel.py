"""Installed from its wheel, the package is the unit of install (issues 15 and 27).

The wheel is built from this checkout and installed, without dependencies, into a fresh
virtual environment; the pinned dependencies come from the test environment's
site-packages, seen through a folder of links to its entries that leaves out this
checkout's own (editable) incident-ops: a second copy of the package's metadata would
register its entry points twice. What a deployer runs then works from the wheel alone:
``check-config`` finds the shipped files; ``airflow plugins`` lists the plugin (from the
entry point, and once only when the repository's ``plugins/`` is mounted as well); the
DAG files shipped in the package parse into every DAG with no import error; with an empty
config folder the embedded desk's ``provision`` says where it looked instead of ending in a
traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(work / "dist"), str(REPO)], check=True, cwd=work,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    [wheel] = (work / "dist").glob("incident_ops-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # Without PYTHONPATH: a checkout on it (with the build's egg-info) reads as installed.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", str(wheel)], check=True, cwd=work, env=clean)
    deps = work / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("incident_ops", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_pinned_deps.pth").write_text(f"{deps}\n")  # after the venv's own packages
    home = work / "airflow-home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "AIRFLOW_HOME": str(home),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(work / "no-plugins"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}
    return {"wheel": wheel, "python": str(venv / "bin" / "python"), "env": env, "cwd": work,
            "prefix": venv}


def run(installed: dict[str, object], *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed["python"]), *args], capture_output=True, text=True,
                          cwd=str(installed["cwd"]), timeout=300,
                          env={**installed["env"], **env})  # type: ignore[dict-item]


def test_the_wheel_holds_the_default_config(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    shipped = {Path(n).name for n in names if "/share/incident-ops/config/" in n}
    expected = {p.name for p in (REPO / "include" / "config").rglob("*.yaml")}
    assert expected <= shipped, sorted(expected - shipped)


def test_installed_from_the_wheel_check_config_finds_the_shipped_files(installed):
    where = run(installed, "-c", "import incident_ops.config as c; print(c.__file__); "
                                  "print(c.config_dir())")
    package, folder = where.stdout.split()
    assert package.startswith(str(installed["prefix"])), where  # not this checkout
    assert folder == str(installed["prefix"] / "share" / "incident-ops" / "config")
    result = run(installed, "-m", "incident_ops", "check-config")
    assert result.returncode == 0, result.stderr
    assert "7 contingency plan(s)" in result.stdout


def test_without_config_provision_says_where_it_looked(installed, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    result = run(installed, "-m", "incident_ops.embedded_desk", "--workdir",
                 str(tmp_path / "desk"), "provision", INCIDENT_OPS_CONFIG_DIR=str(empty))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert f"{empty}/vocabulary.yaml: file not found" in result.stderr, result.stderr
    assert "INCIDENT_OPS_CONFIG_DIR" in result.stderr


def test_the_wheel_holds_every_module_and_the_dag_files(installed):
    """pyproject.toml lists the packages by hand (for the dags/ mapping): none is forgotten."""
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    package = REPO / "include"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("incident_ops/**/*.py")
               if (p.parent / "__init__.py").is_file()}
    assert len(modules) > 50 and modules - names == set()
    dags = {f"incident_ops/dags/{p.name}" for p in (REPO / "dags").glob("*.py")}
    assert dags and dags <= names


def plugins_listed(installed, plugins_folder: Path) -> list[dict]:
    result = run(installed, "-m", "airflow", "plugins", "--output", "json",
                 AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("["):])


def test_airflow_plugins_lists_the_plugin_from_the_entry_point(installed, tmp_path):
    listed = plugins_listed(installed, tmp_path)  # an empty plugins folder
    [plugin] = [p for p in listed if p["name"] == "incident_ops"]
    assert "incident_ops.airflow.web.plugin" in str(plugin["source"])
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/incident-ops"]


def test_with_the_repositorys_plugins_folder_too_the_plugin_loads_once(installed):
    listed = plugins_listed(installed, REPO / "plugins")
    assert [p["name"] for p in listed].count("incident_ops") == 1
    errors = run(installed, "-c", "from airflow import plugins_manager as m; "
                                  "m.ensure_plugins_loaded(); print(m.get_import_errors())",
                 AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"))
    assert errors.returncode == 0, errors.stderr
    assert errors.stdout.strip().splitlines()[-1] == "{}", errors.stdout


def test_the_installed_dag_folder_parses_into_every_dag(installed):
    folder = run(installed, "-m", "incident_ops", "dags-folder")
    assert folder.returncode == 0, folder.stderr
    dags = Path(folder.stdout.strip())
    assert dags.is_relative_to(Path(str(installed["prefix"]))), dags  # not this checkout
    assert sorted(p.name for p in dags.glob("*.py")) == sorted(
        p.name for p in (REPO / "dags").glob("*.py"))
    bag = run(installed, "-c", "import json, sys; from airflow.dag_processing.dagbag import "
                               "DagBag; b = DagBag(dag_folder=sys.argv[1], safe_mode=False); "
                               "print(json.dumps({'errors': b.import_errors, 'files': "
                               "sorted({d.fileloc for d in b.dags.values()}), "
                               "'dags': sorted(b.dags)}))", str(dags))
    assert bag.returncode == 0, bag.stderr
    parsed = json.loads(bag.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["files"] == sorted(str(p) for p in dags.glob("*.py"))  # each holds a DAG
    assert len(parsed["dags"]) >= len(parsed["files"])


def test_the_wheel_declares_its_license_and_carries_the_text(installed):
    wheel = zipfile.ZipFile(installed["wheel"])
    [metadata] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    headers = wheel.read(metadata).decode().split("\n\n")[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
    [text] = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(text) == (REPO / "LICENSE").read_bytes()
