"""Installed from its wheel, the package finds its default config (issue 15).

The wheel is built from this checkout and installed, without dependencies, into a fresh
virtual environment; the dependencies come from the test environment's site-packages,
appended after the fresh one (``PYTHONPATH`` does not run ``.pth`` files, so this checkout's
editable install stays out of sight). What a deployer runs then works from the wheel alone:
``check-config`` finds the shipped files, and with an empty config folder the embedded
desk's ``provision`` says where it looked instead of ending in a traceback.
"""

from __future__ import annotations

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
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", str(wheel)], check=True, cwd=work)
    deps = sysconfig.get_paths()["purelib"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": deps, "HOME": str(work)}
    return {"wheel": wheel, "python": str(venv / "bin" / "python"), "env": env, "cwd": work,
            "prefix": venv}


def run(installed: dict[str, object], *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed["python"]), *args], capture_output=True, text=True,
                          cwd=str(installed["cwd"]), timeout=120,
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
