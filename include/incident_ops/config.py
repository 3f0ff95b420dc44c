"""Loading the policy-as-code files of ``include/config/`` into plain, validated objects.

The directory is ``$INCIDENT_OPS_CONFIG_DIR`` when set (a deployment mounts its own), else
the ``config`` folder shipped beside the package. A broken file is reported with its path
and the offending key (``ConfigError``), never as a bare ``KeyError`` deep in a task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A policy file is missing, unreadable or has a bad value; names file and key."""


def config_dir() -> Path:
    env = os.environ.get("INCIDENT_OPS_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "config"


def load_yaml(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = (directory or config_dir()) / name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


@dataclass(frozen=True)
class Vocabulary:
    """Every coded value with its zh/en labels and attributes (vocabulary.yaml)."""

    sections: dict[str, dict[str, dict[str, Any]]]

    def knows(self, section: str, code: str | None) -> bool:
        return code is not None and code in self.sections.get(section, {})

    def attr(self, section: str, code: str | None, name: str, default: Any = None) -> Any:
        if code is None:
            return default
        return self.sections.get(section, {}).get(code, {}).get(name, default)

    def label(self, section: str, code: str | None, lang: str = "zh") -> str:
        """The label of a code; an unknown code is shown as itself, never hidden."""
        if code is None:
            return "—"
        return str(self.attr(section, code, lang, code))

    def both(self, section: str, code: str | None) -> str:
        """"中文 / English" for bilingual messages."""
        zh, en = self.label(section, code, "zh"), self.label(section, code, "en")
        return zh if zh == en else f"{zh} / {en}"

    def codes(self, section: str) -> list[str]:
        return list(self.sections.get(section, {}))

    def priority_for_rank(self, rank: int) -> str:
        """The priority code whose band contains an RT-style numeric priority."""
        bands = sorted(
            ((int(v.get("rank", 0)), k) for k, v in self.sections["priorities"].items()),
            reverse=True,
        )
        for floor, code in bands:
            if rank >= floor:
                return code
        return bands[-1][1]

    def rank_for_priority(self, code: str) -> int:
        return int(self.attr("priorities", code, "rank", 0))


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


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    email: str | None = None
    phone: str | None = None
    desk_user: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Contacts:
    people: dict[str, Person]
    roles: dict[str, tuple[str, ...]]
    systems: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def role(self, role: str) -> list[Person]:
        return [self.people[k] for k in self.roles.get(role, ())]

    def for_system(self, system: str | None, group: str) -> list[Person]:
        keys = self.systems.get(system or "", {}).get(group, ())
        return [self.people[k] for k in keys]

    def by_desk_user(self, user: str | None) -> Person | None:
        for person in self.people.values():
            if user and person.desk_user == user:
                return person
        return None


def load_contacts(directory: Path | None = None) -> Contacts:
    data = load_yaml("contacts.yaml", directory)
    people: dict[str, Person] = {}
    for key, attrs in (data.get("people") or {}).items():
        if not isinstance(attrs, dict) or not attrs.get("name"):
            raise ConfigError(f"contacts.yaml: people.{key} needs a 'name'")
        people[key] = Person(
            key=key, name=str(attrs["name"]),
            **{k: str(attrs[k]) for k in ("email", "phone", "desk_user", "role")
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


def reports_dir() -> Path:
    """Where generated reports go: ``$INCIDENT_OPS_REPORTS_DIR``, else ``reports/`` of the repo."""
    env = os.environ.get("INCIDENT_OPS_REPORTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "reports"
