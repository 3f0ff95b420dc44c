"""The organisation's reference data as plain, immutable types: vocabulary and contacts.

What the policy reads (codes with their labels, people and roles), with no file or network
access: ``config.py`` loads and validates the YAML files into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A policy file is missing, unreadable or has a bad value; names file and key."""


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


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    email: str | None = None
    phone: str | None = None
    desk_user: str | None = None
    role: str | None = None
    airflow_user: str | None = None  # their Airflow login: questions assigned to them name it


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
