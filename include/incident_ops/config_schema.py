"""The shape of every file of ``include/config/``: unknown keys, wrong types and quoted
booleans are refused with the file, the key and the line.

A typo in a policy file must never switch a rule off silently: ``completness:`` instead of
``completeness:`` used to turn every 100.6 check off, ``close_without_answer: "false"``
(a quoted string, which Python reads as true) closed tickets without the requester's answer.
The schema is checked on YAML's node tree (``yaml.compose``), so every message carries the
line of the offending key, and a quoted ``"false"`` is told apart from ``false``.

The schemas say what each file may hold; what the values mean (known codes, people, cron
syntax) is checked by the loaders that use them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_TAG = "tag:yaml.org,2002:"
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off"}


class Schema(ABC):
    """A node's expected shape; ``check`` yields (line, key path, message)."""

    @abstractmethod
    def check(self, node: yaml.Node, path: str) -> Iterator[tuple[int, str, str]]: ...


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        quoted = node.style in ("'", '"')
        return f'"{node.value}" (quoted: a string)' if quoted else repr(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return node.tag.removeprefix(_TAG)
    return "seq" if isinstance(node, yaml.SequenceNode) else "map"


@dataclass(frozen=True)
class Scalar(Schema):
    """One of the YAML scalar types (``bool``, ``int``, ``float``, ``str``, ``null``)."""

    kinds: tuple[str, ...]
    what: str
    test: Callable[[str], bool] | None = None  # on the scalar's text, after the type matched
    rule: str = ""  # what ``test`` requires, for the message

    def check(self, node: yaml.Node, path: str) -> Iterator[tuple[int, str, str]]:
        kind = _kind(node)
        if kind not in self.kinds:
            hint = ""
            if ("bool" in self.kinds and kind == "str"
                    and str(node.value).strip().lower() in _BOOL_WORDS):
                hint = f"; write {str(node.value).strip().lower()} without quotes"
            yield _line(node), path, f"expected {self.what}, got {_shown(node)}{hint}"
        elif self.test is not None and not self.test(str(node.value)):
            yield _line(node), path, f"{_shown(node)} is not {self.rule}"


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _non_negative(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


BOOL = Scalar(("bool",), "true or false")
STR = Scalar(("str",), "text")
TEXT = Scalar(("str", "int", "float"), "text")  # a label that may look like a number
INT = Scalar(("int",), "a whole number")
POSITIVE_INT = Scalar(("int",), "a whole number", _positive, "greater than 0")
HOURS = Scalar(("int", "float"), "a number of hours", _non_negative, "0 or more")
NUMBER = Scalar(("int", "float"), "a number")
FRACTION = Scalar(("int", "float"), "a number", lambda t: 0 < float(t) <= 1,
                  "between 0 (excluded) and 1")
CLOCK = Scalar(("str",), 'a time "HH:MM" (quoted)',
               lambda t: re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t) is not None, 'a time "HH:MM"')
DAY = Scalar(("str", "date"), "a date YYYY-MM-DD",
             lambda t: re.fullmatch(r"\d{4}-\d\d-\d\d", t) is not None, "a date YYYY-MM-DD")


@dataclass(frozen=True)
class Seq(Schema):
    item: Schema

    def check(self, node: yaml.Node, path: str) -> Iterator[tuple[int, str, str]]:
        if not isinstance(node, yaml.SequenceNode):
            yield _line(node), path, f"expected a list, got {_shown(node)}"
            return
        for i, child in enumerate(node.value):
            yield from self.item.check(child, f"{path}[{i}]")


@dataclass(frozen=True)
class Choice(Schema):
    choices: tuple[str, ...]

    def check(self, node: yaml.Node, path: str) -> Iterator[tuple[int, str, str]]:
        if not isinstance(node, yaml.ScalarNode) or node.value not in self.choices:
            yield _line(node), path, f"{_shown(node)} is not one of {', '.join(self.choices)}"


class _Mapping(Schema):
    """A YAML mapping; ``nullable``: ``key:`` with nothing after it reads as an empty one."""

    nullable: bool

    def check(self, node: yaml.Node, path: str) -> Iterator[tuple[int, str, str]]:
        if self.nullable and _kind(node) == "null":
            return
        if not isinstance(node, yaml.MappingNode):
            yield _line(node), path, f"expected a mapping, got {_shown(node)}"
            return
        yield from self.check_entries(node, path)

    @abstractmethod
    def check_entries(self, node: yaml.MappingNode, path: str
                      ) -> Iterator[tuple[int, str, str]]: ...


@dataclass(frozen=True)
class Fields(_Mapping):
    """A mapping with known keys: any other key is a mistake (a typo switches nothing off)."""

    fields: dict[str, Schema]
    required: tuple[str, ...] = ()
    nullable: bool = False

    def check_entries(self, node: yaml.MappingNode, path: str
                      ) -> Iterator[tuple[int, str, str]]:
        seen: set[str] = set()
        for key_node, value in node.value:
            key = str(key_node.value)
            where = _join(path, key)
            if key in seen:
                yield _line(key_node), where, "appears twice (the second would win silently)"
            seen.add(key)
            schema = self.fields.get(key)
            if schema is None:
                near = _nearest(key, self.fields)
                yield (_line(key_node), where,
                       "unknown key" + (f" (did you mean '{near}'?)" if near else "")
                       + f"; known: {', '.join(sorted(self.fields))}")
                continue
            yield from schema.check(value, where)
        for key in self.required:
            if key not in seen:
                yield _line(node), _join(path, key), "is missing"


@dataclass(frozen=True)
class Each(_Mapping):
    """A mapping whose keys are names the file chooses (codes, people, systems)."""

    value: Schema
    nullable: bool = False

    def check_entries(self, node: yaml.MappingNode, path: str
                      ) -> Iterator[tuple[int, str, str]]:
        for key_node, value in node.value:
            yield from self.value.check(value, _join(path, str(key_node.value)))


def _nearest(key: str, known: dict[str, Any]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return found[0] if found else None


# -- the files ------------------------------------------------------------------------------

def _label(**extra: Schema) -> Fields:
    return Fields({"zh": TEXT, "en": TEXT, **extra}, required=("zh", "en"))


_CODES = Seq(STR)
CLOSURE = Fields({
    "completeness": Fields({name: BOOL for name in (
        "solution", "category", "system", "close_code", "fault_details", "impact",
        "resolver_role", "config_item", "completed_at")}),
    "confirmation": Fields({"remind_helpdesk_after_hours": HOURS,
                            "close_without_answer": BOOL,
                            "close_without_answer_after_hours": HOURS}),
    "bulk_size": POSITIVE_INT,
    "read_parallelism": POSITIVE_INT,
})

_TARGET = Fields({"respond": HOURS, "resolve": HOURS}, required=("resolve",))
SLA = Fields({
    "targets": Each(_TARGET),
    "impact_targets": Each(Fields({"resolve": HOURS}, required=("resolve",)), nullable=True),
    "calendar": Fields({"applies_to": _CODES, "days": Seq(Choice(
        ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))), "start": CLOCK, "end": CLOCK,
        "holidays_from": STR, "extra_holidays": Seq(DAY), "extra_workdays": Seq(DAY),
        "warn_days_ahead": INT}, nullable=True),
    "ladder": Seq(Fields({"rung": STR, "at": FRACTION, "after_breach": HOURS, "notify": STR,
                          "step": TEXT, "major_impact": BOOL}, required=("rung", "notify"))),
    "snapshot": Fields({"to": _CODES}),
}, required=("targets", "ladder"))

_AUDIENCE = Fields({"to": _CODES, "cc": _CODES, "roles": _CODES, "cc_roles": _CODES},
                   nullable=True)
REPORTS = Fields({
    "language": Choice(("zh", "en")),
    "smtp_conn_id": STR,
    "top_n": POSITIVE_INT, "list_limit": POSITIVE_INT, "email_rows": POSITIVE_INT,
    "detail_rows_max": POSITIVE_INT, "sla_goal_pct": NUMBER,
    "periods": Fields({kind: _AUDIENCE for kind in ("daily", "weekly", "monthly")}),
})

VOCABULARY = Fields({
    "statuses": Each(_label()),
    "priorities": Each(_label(rank=INT)),
    "impacts": Each(_label()),
    "sources": Each(_label(route=Choice(("user", "auto")))),
    "categories": Each(_label(needs_ci=BOOL, fault=BOOL)),
    "systems": Each(_label()),
    "close_codes": Each(_label(outcome=Choice(("solved", "unsuccessful", "other")))),
    "resolver_roles": Each(_label(status=STR, support=BOOL)),
    "tiers": Each(_label(status=STR)),
    "confirmations": Each(_label()),
})

CONTACTS = Fields({
    "people": Each(Fields({"name": TEXT, "email": STR, "phone": TEXT, "desk_user": STR,
                           "role": TEXT, "airflow_user": STR}, required=("name",))),
    "roles": Each(_CODES),
    "systems": Each(Each(_CODES)),
}, required=("people",))

SCHEMAS: dict[str, Schema] = {
    "closure.yaml": CLOSURE, "sla.yaml": SLA, "reports.yaml": REPORTS,
    "vocabulary.yaml": VOCABULARY, "contacts.yaml": CONTACTS,
}


def parse(name: str, text: str) -> tuple[Any, list[str]]:
    """``text`` read once as the config file ``name``: its data (as ``yaml.safe_load``
    gives it) and what is wrong with it, one line each (``name line N: key.path:
    message``; empty when it is fine or has no schema)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, problems(name, node)


def problems(name: str, node: yaml.Node | None) -> list[str]:
    """What is wrong with the composed document ``node`` as the config file ``name``."""
    schema = SCHEMAS.get(name)
    if schema is None:
        return []
    if node is None:
        return [f"{name}: the file is empty"]
    return [f"{name} line {line}: {path or '(top level)'}: {message}"
            for line, path, message in schema.check(node, "")]
