"""The deployment files checked without a Docker engine.

* ``docker-compose.yml`` passes ``docker-compose config`` (Debian's ``docker-compose``
  1.29, or ``docker compose`` v2 where installed) with ``.env.example`` as its only
  environment, with and without the sandbox profiles; the tests below read that resolved
  configuration, not the raw file;
* every file it references exists: build contexts, Dockerfiles, bind-mounted paths, env
  files, the scripts it runs; every named volume is declared;
* every environment variable the DAGs and the package read (found by reading their source)
  and every connection they use by default is in ``.env.example`` and reaches the services
  that parse DAGs or run tasks, with the same default the code has;
* every image is pinned (a tag other than ``latest``, or a digest), the Dockerfiles' bases
  included, and the Airflow base image is the Airflow version requirements.txt pins;
* no secret is baked into an image; long-running services have health checks; the worker
  can be scaled.

What it cannot check here: that the images build and the stack starts (no Docker engine).
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.services import apt_install

pytestmark = [pytest.mark.deploy]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROFILES = ("desk", "mail", "flower", "debug")
# Services that parse DAG files or run tasks: they need every setting the DAGs read.
DAG_SERVICES = ("airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                "airflow-triggerer")
AIRFLOW_SERVICES = (*DAG_SERVICES, "airflow-apiserver", "airflow-init")
# Read by the code but fixed by the compose file on purpose, so not an operator's setting.
FIXED_BY_COMPOSE = {"INCIDENT_OPS_REPORTS_DIR": "the reports/ bind mount's target"}
# Read only by the embedded desk (the desk container sets them, not Airflow's).
DESK_ONLY_PREFIXES = ("DESK_",)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY\b", re.IGNORECASE)


# ---------------------------------------------------------------------- the binary
def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True,
                               timeout=30, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    """``docker-compose`` (Debian's package), installed here if missing and possible."""
    cmd = _compose_command()
    if cmd is None:
        why = apt_install("docker-compose")
        cmd = _compose_command()
        if cmd is None:
            pytest.skip(f"no docker-compose binary and it could not be installed: {why}")
    return cmd


def _run_config(compose: list[str], *extra: str, env_file: Path = ENV_EXAMPLE
                ) -> subprocess.CompletedProcess[str]:
    # Only .env.example: no AIRFLOW_CONN_* or secret from the developer's shell may fill a
    # gap, and no .env of the working tree either (--env-file replaces it).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [*compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), *extra, "config"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def resolved(compose: list[str]) -> dict[str, Any]:
    """The configuration as compose resolves it, every profile enabled."""
    args = [a for p in PROFILES for a in ("--profile", p)]
    proc = _run_config(compose, *args)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    assert isinstance(config, dict) and config.get("services"), proc.stdout[:2000]
    return config


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[m.group(1)] = value
    return values


# ------------------------------------------------------------- compose config passes
def test_compose_config_passes_with_env_example(compose: list[str]) -> None:
    for profiles in ((), ("desk", "mail")):
        args = [a for p in profiles for a in ("--profile", p)]
        proc = _run_config(compose, *args)
        assert proc.returncode == 0, f"profiles {profiles}: {proc.stderr}"


def test_compose_refuses_to_start_without_the_secrets(compose: list[str],
                                                      tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    proc = _run_config(compose, env_file=empty)
    assert proc.returncode != 0
    assert "in .env" in proc.stderr, proc.stderr


def test_the_services_of_the_issue_are_there(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in ("postgres", "redis", "airflow-init", *AIRFLOW_SERVICES, "desk", "mail"):
        assert name in services, name
    assert services["desk"].get("profiles") == ["desk"]
    assert services["mail"].get("profiles") == ["mail"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"), name


# ------------------------------------------------------------------- referenced files
def _bind_sources(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of bind mounts; named volumes come back with source = the name."""
    mounts = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):  # compose v2's long syntax
            mounts.append((str(vol.get("source", "")), str(vol.get("target", ""))))
        else:  # v1: "source:target[:mode]"
            parts = str(vol).split(":")
            mounts.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
    return mounts


def test_every_referenced_file_exists(resolved: dict[str, Any]) -> None:
    declared_volumes = set(resolved.get("volumes") or {})
    for name, service in resolved["services"].items():
        build = service.get("build")
        if build:
            context = Path(build["context"] if isinstance(build, dict) else build)
            assert context.is_dir(), f"{name}: build context {context}"
            dockerfile = context / (build.get("dockerfile", "Dockerfile")
                                    if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
        for source, target in _bind_sources(service):
            if source.startswith(("/", ".")):
                assert Path(source).exists(), f"{name}: mounted {source} -> {target}"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        for env_file in service.get("env_file") or []:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            assert Path(path).is_file(), f"{name}: env_file {path}"


def test_the_images_copy_only_files_that_exist_in_the_build_context() -> None:
    ignored = [line.strip().rstrip("/") for line in
               (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith(("#", "!"))]
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "desk" / "Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            m = re.match(r"^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$", line.strip())
            if m:
                for src in m.group(1).split():
                    assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src}"
                    hit = [pat for pat in ignored if fnmatch.fnmatch(src, pat)
                           or src.startswith(pat + "/")]
                    assert not hit, f"{dockerfile.name}: COPY {src} excluded by .dockerignore {hit}"


def test_scripts_the_services_run_exist_and_parse(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    init = services["airflow-init"]
    mounts = dict((t, s) for s, t in _bind_sources(init))
    command = " ".join(init["command"] if isinstance(init["command"], list)
                       else [init["command"]])
    script_target = next(t for t in mounts if t.endswith("airflow-init.sh"))
    assert script_target in command
    mail = services["mail"]
    mail_script = next(t for _, t in _bind_sources(mail) if t.endswith("mailcatcher.py"))
    assert mail_script in " ".join(mail["entrypoint"])
    for script in (ROOT / "deploy" / "airflow-init.sh", ROOT / "deploy" / "desk" /
                   "entrypoint.sh"):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


# ----------------------------------------------------------- what the DAGs need, wired
def _env_reads() -> dict[str, tuple[bool, Any, str]]:
    """INCIDENT_OPS_* read by dags/ and the package: name -> (has default, literal, where).

    Finds ``os.environ.get(NAME[, default])``, ``os.getenv(...)`` and ``os.environ[NAME]``
    where NAME is a string literal or a module-level string constant.
    """
    found: dict[str, tuple[bool, Any, str]] = {}
    files = sorted((ROOT / "dags").glob("*.py")) + sorted(
        p for p in (ROOT / "include" / "incident_ops").rglob("*.py")
        if "embedded_desk" not in p.parts)
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name)
                     and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}

        def name_of(node: ast.AST, constants: dict[str, str] = constants) -> str | None:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                return node.value
            if isinstance(node, ast.Name):
                return constants.get(node.id)
            return None

        for node in ast.walk(tree):
            name, has_default, default = None, False, None
            if isinstance(node, ast.Call) and node.args:
                func = ast.unparse(node.func)
                if func in ("os.environ.get", "os.getenv", "environ.get"):
                    name = name_of(node.args[0])
                    if len(node.args) > 1:
                        has_default = True
                        arg = node.args[1]
                        default = arg.value if isinstance(arg, ast.Constant) else ...
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                name = name_of(node.slice)
            if name and name.startswith("INCIDENT_OPS_"):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
                if name not in found or has_default:
                    found[name] = (has_default, default, where)
    return found


def _default_conn_ids() -> dict[str, str]:
    """Connection ids the code uses unless told otherwise: conn_id parameter defaults,
    hooks' ``default_conn_name`` and ``*_conn_id`` keys of the policy files."""
    ids: dict[str, str] = {}
    for path in sorted((ROOT / "dags").glob("*.py")) + sorted(
            (ROOT / "include" / "incident_ops").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.arguments):
                params = node.posonlyargs + node.args + node.kwonlyargs
                defaults = ([None] * (len(node.posonlyargs + node.args) - len(node.defaults))
                            + list(node.defaults) + list(node.kw_defaults))
                for param, default in zip(params, defaults, strict=True):
                    if (param.arg.endswith("conn_id") and isinstance(default, ast.Constant)
                            and isinstance(default.value, str)):
                        ids[default.value] = f"{path.relative_to(ROOT)}:{param.lineno}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                for target in targets:
                    if (isinstance(target, ast.Name) and (target.id == "default_conn_name"
                                                          or target.id.endswith("_conn_id"))
                            and isinstance(value, ast.Constant)
                            and isinstance(value.value, str)):
                        ids[value.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    for path in sorted((ROOT / "include" / "config").rglob("*.yaml")):
        for m in re.finditer(r"^\s*\w*conn_id:\s*([\w.-]+)", path.read_text(encoding="utf-8"),
                             re.MULTILINE):
            ids[m.group(1)] = str(path.relative_to(ROOT))
    return ids


def _compose_defaults() -> dict[str, str]:
    """``NAME: ${NAME:-default}`` entries of the raw compose file."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in re.finditer(
        r"^\s+([A-Z][A-Z0-9_]*): \$\{\1:-([^}]*)\}\s*$", text, re.MULTILINE)}


def test_the_scan_finds_what_we_know_the_dags_read() -> None:
    """Guards the guard: if the source scan broke, the wiring test would pass vacuously."""
    reads = _env_reads()
    assert {"INCIDENT_OPS_CLOSURE_SCHEDULE", "INCIDENT_OPS_TIMEZONE",
            "INCIDENT_OPS_CONFIG_DIR", "INCIDENT_OPS_RETRIES"} <= set(reads)
    assert reads["INCIDENT_OPS_CLOSURE_SCHEDULE"][:2] == (True, "*/10 * * * *")
    assert {"servicedesk_default", "smtp_default", "sms_default"} <= set(_default_conn_ids())


def test_every_setting_the_dags_read_is_in_env_example_and_wired(
        resolved: dict[str, Any]) -> None:
    example = env_example()
    compose_defaults = _compose_defaults()
    services = resolved["services"]
    problems = []
    for name, (has_default, default, where) in sorted(_env_reads().items()):
        if name in FIXED_BY_COMPOSE:
            for svc in DAG_SERVICES:
                if name not in services[svc]["environment"]:
                    problems.append(f"{name} ({where}): not set in {svc}")
            continue
        if name not in example:
            problems.append(f"{name} ({where}): missing from .env.example")
        for svc in DAG_SERVICES:
            if name not in services[svc]["environment"]:
                problems.append(f"{name} ({where}): not passed to {svc}")
        if has_default:
            # The code has a default, so an empty value would replace it with "": compose
            # must fall back to a real value, the code's own where it is a literal.
            fallback = compose_defaults.get(name)
            if not fallback:
                problems.append(f"{name} ({where}): needs `${{{name}:-default}}` in compose")
            elif default is not ... and str(default) != fallback:
                problems.append(f"{name} ({where}): compose default {fallback!r} != code "
                                f"default {default!r}")
            if default is not ... and name in example and example[name] != str(default):
                problems.append(f"{name} ({where}): .env.example has {example[name]!r}, "
                                f"the code's default is {default!r}")
    assert not problems, "\n".join(problems)


def test_every_default_connection_is_in_env_example_and_wired(
        resolved: dict[str, Any]) -> None:
    example = env_example()
    services = resolved["services"]
    problems = []
    for conn_id, where in sorted(_default_conn_ids().items()):
        var = "AIRFLOW_CONN_" + conn_id.upper()
        if not example.get(var):
            problems.append(f"{conn_id} ({where}): {var} missing or empty in .env.example")
        for svc in DAG_SERVICES:
            if not services[svc]["environment"].get(var):
                problems.append(f"{conn_id} ({where}): {var} does not reach {svc}")
    assert not problems, "\n".join(problems)


def test_connections_in_env_example_parse_as_airflow_connections() -> None:
    from airflow.models.connection import Connection

    for var, raw in env_example().items():
        if var.startswith("AIRFLOW_CONN_") and raw:
            conn_id = var.removeprefix("AIRFLOW_CONN_").lower()
            conn = (Connection.from_json(raw, conn_id=conn_id) if raw.startswith("{")
                    else Connection(conn_id=conn_id, uri=raw))
            if conn_id == "incident_ops_answers":  # a secret only: the links' signing key
                assert conn.password and len(conn.password) >= 16, var
                continue
            assert conn.conn_type and conn.host, var


def test_the_api_server_reads_artefacts_where_the_tasks_write_them(
        resolved: dict[str, Any]) -> None:
    """Plan pages are served by the API server from the store the tasks write to: the same
    base and connection everywhere; by default the reports/ folder every one mounts."""
    services = resolved["services"]
    readers = ("airflow-apiserver", *DAG_SERVICES)
    for var in ("INCIDENT_OPS_ARTEFACTS", "INCIDENT_OPS_ARTEFACTS_CONN"):
        values = {svc: services[svc]["environment"].get(var) for svc in readers}
        assert None not in values.values() and len(set(values.values())) == 1, values
    env = services["airflow-worker"]["environment"]
    assert env["INCIDENT_OPS_ARTEFACTS"] == "file://" + env["INCIDENT_OPS_REPORTS_DIR"]
    for svc in readers:
        targets = [t.rstrip("/") for _, t in _bind_sources(services[svc])]
        assert env["INCIDENT_OPS_REPORTS_DIR"] in targets, svc


def test_the_servicedesk_pool_is_created_with_the_name_the_dags_use(
        resolved: dict[str, Any]) -> None:
    from incident_ops.airflow.dag_defaults import DESK_POOL

    init = (ROOT / "deploy" / "airflow-init.sh").read_text()
    assert re.search(rf"airflow pools set {DESK_POOL} ", init), init
    env = resolved["services"]["airflow-init"]["environment"]
    assert env["INCIDENT_OPS_DESK_POOL_SLOTS"] == env_example()["INCIDENT_OPS_DESK_POOL_SLOTS"]


def test_concurrency_and_policy_settings_come_from_env_example(
        resolved: dict[str, Any]) -> None:
    example = env_example()
    worker = resolved["services"]["airflow-worker"]["environment"]
    for var in ("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "INCIDENT_OPS_CONFIG_DIR",
                "INCIDENT_OPS_TIMEZONE"):
        assert var in example, var
        assert str(worker[var]) == example[var], var
    # The policy directory the services are told about is inside a mounted path.
    config_dir = worker["INCIDENT_OPS_CONFIG_DIR"]
    targets = [t for _, t in _bind_sources(resolved["services"]["airflow-worker"])]
    assert any(config_dir.startswith(t.rstrip("/") + "/") for t in targets), config_dir


# --------------------------------------------------------------------------- images
def _pinned(ref: str) -> bool:
    if "@sha256:" in ref:
        return True
    name, _, tag = ref.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def _dockerfile_bases(dockerfile: Path, build_args: dict[str, str]) -> list[str]:
    args: dict[str, str] = {}
    bases = []
    for line in dockerfile.read_text().splitlines():
        line = line.strip()
        m = re.match(r"^ARG\s+(\w+)(?:=(\S+))?", line)
        if m:
            args[m.group(1)] = build_args.get(m.group(1), m.group(2) or "")
            continue
        m = re.match(r"^FROM\s+(\S+)", line, re.IGNORECASE)
        if m:
            bases.append(re.sub(r"\$\{?(\w+)\}?", lambda v: args.get(v.group(1), ""),
                                m.group(1)))
    return bases


def test_every_image_is_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = service.get("image")
        assert image, f"{name}: no image name (an untagged build)"
        assert _pinned(image), f"{name}: image {image!r} is not pinned"
        build = service.get("build")
        if isinstance(build, dict):
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            build_args = {k: str(v) for k, v in (build.get("args") or {}).items()}
            for base in _dockerfile_bases(dockerfile, build_args):
                assert _pinned(base), f"{name}: {dockerfile.name} FROM {base!r}"
            # The defaults without compose's build args are pinned too (a plain
            # `docker build`).
            for base in _dockerfile_bases(dockerfile, {}):
                assert _pinned(base), f"{dockerfile}: default FROM {base!r}"
    assert "latest" not in COMPOSE_FILE.read_text()


def test_the_airflow_base_image_is_the_version_requirements_pin(
        resolved: dict[str, Any]) -> None:
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.txt").read_text()
                .splitlines() if "==" in line and not line.startswith("#"))
    version = pins["apache-airflow"]
    build = resolved["services"]["airflow-worker"]["build"]
    (base,) = _dockerfile_bases(ROOT / build["dockerfile"], build["args"])
    assert base == f"apache/airflow:{version}-python3.11", base
    assert str(build["args"]["AIRFLOW_VERSION"]) == version
    assert "apache-airflow-providers-celery" in pins and "psycopg2-binary" in pins


# ------------------------------------------------------------------ secrets, health
def test_no_secret_is_baked_into_an_image(resolved: dict[str, Any]) -> None:
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "desk" / "Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if re.match(r"^\s*(ENV|ARG)\b", line):
                assert not SECRET_NAME.search(line), f"{dockerfile}: {line}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored and ".venv" in ignored
    for name, service in resolved["services"].items():
        build = service.get("build")
        for arg in (build.get("args") or {}) if isinstance(build, dict) else {}:
            assert not SECRET_NAME.search(arg), f"{name}: build arg {arg}"
    # .env.example carries placeholders only.
    for var, value in env_example().items():
        if SECRET_NAME.search(var) and not var.startswith("AIRFLOW_CONN_"):
            assert value == "" or "change-me" in value, f"{var}={value!r} in .env.example"


def test_long_running_services_have_health_checks(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if name in ("airflow-init", "airflow-cli"):
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"


def test_the_worker_can_be_scaled(resolved: dict[str, Any]) -> None:
    worker = resolved["services"]["airflow-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "a published port would clash between replicas"
    assert "hostname" not in worker
