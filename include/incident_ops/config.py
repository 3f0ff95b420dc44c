"""Loading the policy-as-code files of ``include/config/`` into plain, validated objects.

The directory is ``$INCIDENT_OPS_CONFIG_DIR`` when set (a deployment mounts its own), else
the ``config`` folder shipped beside the package. A broken file is reported with its path
and the offending key (``ConfigError``), never as a bare ``KeyError`` deep in a task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from incident_ops.reference import ConfigError, Contacts, Person, Vocabulary


def config_dir() -> Path:
    """Where the policy files are: ``$INCIDENT_OPS_CONFIG_DIR``; else ``include/config``
    beside the package (a checkout, an editable install, the Docker image); else the copy a
    wheel installs under ``<prefix>/share/incident-ops/config``. A folder that holds none
    of them is reported by ``load_yaml`` with every place looked at."""
    env = os.environ.get("INCIDENT_OPS_CONFIG_DIR")
    if env:
        return Path(env)
    for candidate in config_candidates():
        if (candidate / "vocabulary.yaml").is_file():
            return candidate
    return config_candidates()[0]


def config_candidates() -> list[Path]:
    import sys

    return [Path(__file__).resolve().parent.parent / "config",
            Path(sys.prefix) / "share" / "incident-ops" / "config"]


def dags_folder() -> Path:
    """The DAG files: ``incident_ops/dags`` inside an installed wheel (the repository's
    ``dags/``, mapped in by pyproject.toml); in a checkout or an editable install, that
    ``dags/`` itself, beside ``include/``."""
    package = Path(__file__).resolve().parent
    shipped = package / "dags"
    return shipped if shipped.is_dir() else package.parents[1] / "dags"


def load_yaml(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The file ``name`` of the config folder, checked against its schema
    (``config_schema``): an unknown key, a wrong type or a quoted boolean raises
    ``ConfigError`` naming the file, the key and the line, never a silently dropped rule."""
    from incident_ops.config_schema import parse

    folder = directory or config_dir()
    path = folder / name
    try:
        data, found = parse(name, path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        looked = (f"$INCIDENT_OPS_CONFIG_DIR={os.environ['INCIDENT_OPS_CONFIG_DIR']}"
                  if os.environ.get("INCIDENT_OPS_CONFIG_DIR") and directory is None
                  else ", ".join(str(c) for c in ([folder] if directory else
                                                  config_candidates())))
        raise ConfigError(f"{path}: file not found (looked in {looked}); set "
                          "$INCIDENT_OPS_CONFIG_DIR to the folder holding vocabulary.yaml, "
                          "contacts.yaml, closure.yaml, sla.yaml, reports.yaml and plans/")\
            from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if found:
        raise ConfigError(f"{path}: {len(found)} problem(s):\n" + "\n".join(found))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


TIMEZONE_ENV = "INCIDENT_OPS_TIMEZONE"


def timezone() -> str:
    """The deployment's time zone, the one source for every schedule, SLA calendar, report
    day and time shown in a mail: ``$INCIDENT_OPS_TIMEZONE`` (default Asia/Shanghai)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get(TIMEZONE_ENV) or "Asia/Shanghai"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"${TIMEZONE_ENV}={name!r} is not a time zone (e.g. Asia/Shanghai)"
                          ) from exc
    return name


REQUIRED_SECTIONS = (
    "statuses", "priorities", "impacts", "sources", "categories", "systems", "close_codes",
    "resolver_roles", "tiers", "confirmations",
)


def load_vocabulary(directory: Path | None = None) -> Vocabulary:
    data = load_yaml("vocabulary.yaml", directory)
    for section in REQUIRED_SECTIONS:
        entries = data.get(section)
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f"vocabulary.yaml: section '{section}' is missing or empty")
        for code, attrs in entries.items():
            if not isinstance(attrs, dict) or "zh" not in attrs or "en" not in attrs:
                raise ConfigError(
                    f"vocabulary.yaml: {section}.{code} needs both a 'zh' and an 'en' label"
                )
    return Vocabulary(sections=data)


def load_contacts(directory: Path | None = None) -> Contacts:
    data = load_yaml("contacts.yaml", directory)
    people: dict[str, Person] = {}
    for key, attrs in (data.get("people") or {}).items():
        if not isinstance(attrs, dict) or not attrs.get("name"):
            raise ConfigError(f"contacts.yaml: people.{key} needs a 'name'")
        people[key] = Person(
            key=key, name=str(attrs["name"]),
            **{k: str(attrs[k])
               for k in ("email", "phone", "desk_user", "role", "airflow_user")
               if attrs.get(k) is not None})

    def refs(where: str, keys: Any) -> tuple[str, ...]:
        keys = tuple(keys or ())
        for k in keys:
            if k not in people:
                raise ConfigError(f"contacts.yaml: {where} names unknown person '{k}'")
        return keys

    roles = {r: refs(f"roles.{r}", ks) for r, ks in (data.get("roles") or {}).items()}
    systems = {
        s: {g: refs(f"systems.{s}.{g}", ks) for g, ks in (groups or {}).items()}
        for s, groups in (data.get("systems") or {}).items()
    }
    return Contacts(people=people, roles=roles, systems=systems)


def system_labels(directory: Path | None = None) -> dict[str, str]:
    """Every system of the vocabulary: code -> bilingual label ("计费账务系统 / Billing")."""
    vocabulary = load_vocabulary(directory)
    return {code: vocabulary.both("systems", code) for code in vocabulary.codes("systems")}


def plan_systems(directory: Path | None = None) -> dict[str, str]:
    """The systems with a contingency plan, for the trigger form: the file names of
    ``plans/`` (a directory listing, no plan is read), labelled from the vocabulary (its
    code when the vocabulary cannot be read: the run's first task then says why)."""
    folder = (directory or config_dir()) / "plans"
    codes = sorted(p.stem for p in folder.glob("*.yaml"))
    try:
        labels = system_labels(directory)
    except ConfigError:
        labels = {}
    return {code: labels.get(code, code) for code in codes}


def reports_dir() -> Path:
    """Where generated reports go: ``$INCIDENT_OPS_REPORTS_DIR``, else ``reports/`` of the repo."""
    env = os.environ.get("INCIDENT_OPS_REPORTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "reports"


def load_plans(contacts: Contacts, directory: Path | None = None) -> Any:
    """Every usable contingency plan (``plans/*.yaml``), validated; broken ones are reported
    by file and field in the book's ``problems`` and left out."""
    from incident_ops.policy.contingency import (
        PLANS_DIR,
        PlanBook,
        PlanProblem,
        parse_plan,
    )

    book = PlanBook()
    try:
        systems = system_labels(directory)
    except ConfigError as exc:
        book.problems.append(PlanProblem("vocabulary.yaml", "", str(exc)))
        return book
    for path in sorted(((directory or config_dir()) / PLANS_DIR).glob("*.yaml")):
        file = f"{PLANS_DIR}/{path.name}"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            book.problems.append(PlanProblem(file, "", f"cannot read: {exc}"))
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else ""
            book.problems.append(PlanProblem(file, where, f"not valid YAML: "
                                             f"{getattr(exc, 'problem', exc)}"))
            continue
        plan, problems = parse_plan(data, file, contacts, systems)
        book.problems += problems
        if plan is not None:
            book.plans[plan.system] = plan
    return book
