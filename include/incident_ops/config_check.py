"""The whole config folder checked at once: ``python -m incident_ops check-config`` and every
DAG's first task.

Above both the loaders (``config``) and what is built from the files (the closure and SLA
policies, the report settings): it builds each of them once and collects what fails, so
neither ``config`` nor ``reports`` has to know the other. Each file's schema is checked by
``config_schema`` as ``config.load_yaml`` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from incident_ops.config import (
    config_dir,
    load_contacts,
    load_plans,
    load_vocabulary,
    load_yaml,
    timezone,
)
from incident_ops.policy.closure import ClosurePolicy
from incident_ops.policy.escalation import SlaPolicy
from incident_ops.reference import ConfigError
from incident_ops.reports.settings import ReportSettings


def check_config(directory: Path | None = None) -> list[str]:
    """Every problem of the config folder, one line each (empty: all good): each file's
    schema, the vocabulary and contacts, the closure, SLA and report policies built from
    them, and every contingency plan. What ``python -m incident_ops check-config`` prints."""
    found: list[str] = []

    def attempt(build: Any) -> Any:
        try:
            return build()
        except ConfigError as exc:
            found.append(str(exc))
            return None

    attempt(timezone)
    attempt(lambda: load_vocabulary(directory))
    contacts = attempt(lambda: load_contacts(directory))
    attempt(lambda: ClosurePolicy.from_dict(load_yaml("closure.yaml", directory)))
    attempt(lambda: SlaPolicy.from_dict(load_yaml("sla.yaml", directory), tz=timezone()))
    attempt(lambda: ReportSettings.from_dict(load_yaml("reports.yaml", directory)))
    if contacts is not None:
        book = load_plans(contacts, directory)
        found += [f"{p.file}{' ' + p.field if p.field else ''}: {p.message}"
                  for p in book.problems]
        if not book.plans:
            found.append(f"{(directory or config_dir()) / 'plans'}: no usable contingency plan")
    return found
