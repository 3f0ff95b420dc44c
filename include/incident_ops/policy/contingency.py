"""Contingency plans (应急预案) for the emergency sub-process 101: schema, loader, coverage.

One YAML file per system under ``include/config/plans/``. 101's principles list what every
plan must hold, and the schema below demands exactly that: the conditions that start it,
the emergency team's leader and members with their contacts, the handling steps, who is
informed, the aftermath, and the safeguards (people, training, drills, premises).

Plans are validated when loaded. A broken plan is reported by file and field
(``PlanProblem``) and left out; the other plans keep working, so a typo in ``dw.yaml``
never stops an emergency on ``crm``.

Plans are discovered: a new system's plan is a new file named after the system's code in
the vocabulary (``plans/<code>.yaml``), no code change. The trigger form's system list is
the folder's file names (``config.plan_systems``: a directory listing at parse time, the
plans themselves are read when a run starts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from incident_ops.policy.meaning import meets
from incident_ops.reference import Contacts, Person

PLANS_DIR = "plans"
IMPACTS: tuple[str, ...] = ("major", "high", "medium", "low")
IMPACT_LABELS: dict[str, str] = {"major": "重大 / Major", "high": "高 / High",
                                 "medium": "中 / Medium", "low": "低 / Low"}
SAFEGUARDS = ("people", "training", "drills", "premises")
INFORM_ROLES = ("incident_manager", "problem_manager", "management", "leaders", "group_hq",
                "helpdesk")


class PlanUnavailable(LookupError):
    """No usable plan for a system: none shipped, or its file is broken (problems say how)."""

    def __init__(self, system: str, problems: Sequence[PlanProblem] = ()):
        detail = "; ".join(str(p) for p in problems) or "no plan file for it"
        super().__init__(f"no usable contingency plan for system '{system}': {detail}")
        self.system = system
        self.problems = tuple(problems)


@dataclass(frozen=True)
class PlanProblem:
    """What is wrong with one plan file, by file and field (``team.members[2].email``)."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '(top level)'}: {self.message}"


@dataclass(frozen=True)
class Text:
    """A bilingual line: the plans are written for Chinese readers with English beside."""

    zh: str
    en: str

    def both(self) -> str:
        return self.zh if self.zh == self.en else f"{self.zh} / {self.en}"


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None = None
    phone: str | None = None
    duty: str = ""  # what this person does in the team
    person: str | None = None  # key in contacts.yaml when referenced from there
    # Their Airflow login: the questions of their role are assigned to it (contacts.yaml's
    # person gives it; a plan's own entry may name one for someone without a person key).
    airflow_user: str | None = None


@dataclass(frozen=True)
class Cadence:
    """How the plan's questions chase their people: a reminder every ``remind_every_minutes``
    (at most ``max_reminders``), and after ``escalate_after_minutes`` without an answer the
    incident manager and management are told. Minutes may be fractional (drills, tests)."""

    remind_every_minutes: float | None = 15
    escalate_after_minutes: float | None = 45
    max_reminders: int = 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StartCondition:
    """A condition that starts the plan; ``keywords`` are matched against the symptoms."""

    id: str
    text: Text
    keywords: tuple[str, ...]
    impacts: tuple[str, ...] = IMPACTS  # impact levels at which it applies


@dataclass(frozen=True)
class Step:
    text: Text
    owner: str = ""  # who carries it out (duty or name)
    minutes: int | None = None  # target time from the start of the emergency


@dataclass(frozen=True)
class ContingencyPlan:
    system: str
    title: Text
    version: str
    file: str
    start_conditions: tuple[StartCondition, ...]
    leader: Contact
    members: tuple[Contact, ...]
    vendors: tuple[Contact, ...]
    steps: tuple[Step, ...]
    inform: tuple[Contact, ...]
    inform_note: Text
    aftermath: tuple[Text, ...]
    safeguards: dict[str, Text]
    group_support: tuple[Contact, ...] = ()  # who at the group centre to ask for help (101.4)
    cadence: Cadence = Cadence()
    system_label: str = ""  # the vocabulary's bilingual name of ``system``

    @property
    def team(self) -> tuple[Contact, ...]:
        return (self.leader, *self.members)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContingencyPlan:
        """The inverse of ``to_dict`` (the plan travels between tasks through XCom)."""
        def text(d: Mapping[str, Any]) -> Text:
            return Text(d["zh"], d["en"])

        def contacts(items: Sequence[Mapping[str, Any]]) -> tuple[Contact, ...]:
            return tuple(Contact(**c) for c in items)

        return cls(
            system=data["system"], title=text(data["title"]), version=data["version"],
            file=data["file"],
            start_conditions=tuple(
                StartCondition(c["id"], text(c["text"]), tuple(c["keywords"]),
                               tuple(c["impacts"])) for c in data["start_conditions"]),
            leader=Contact(**data["leader"]), members=contacts(data["members"]),
            vendors=contacts(data["vendors"]),
            steps=tuple(Step(text(s["text"]), s.get("owner", ""), s.get("minutes"))
                        for s in data["steps"]),
            inform=contacts(data["inform"]), inform_note=text(data["inform_note"]),
            aftermath=tuple(text(a) for a in data["aftermath"]),
            safeguards={k: text(v) for k, v in data["safeguards"].items()},
            group_support=contacts(data.get("group_support", ())),
            cadence=Cadence(**data.get("cadence", {})),
            system_label=str(data.get("system_label") or ""),
        )


# ------------------------------------------------------------------------ the schema
_TEXT = {"type": "object", "required": ["zh", "en"], "additionalProperties": False,
         "properties": {"zh": {"type": "string", "minLength": 1},
                        "en": {"type": "string", "minLength": 1}}}
_CONTACT = {
    "oneOf": [
        {"type": "string", "minLength": 1},  # a key of contacts.yaml people
        {"type": "object", "additionalProperties": False,
         "properties": {"person": {"type": "string"}, "name": {"type": "string", "minLength": 1},
                        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
                        "phone": {"type": "string", "pattern": r"^\+?[0-9 -]{5,20}$"},
                        "duty": {"type": "string"}, "airflow_user": {"type": "string"}},
         "anyOf": [{"required": ["person"]}, {"required": ["name"]}]},
    ]
}
_NONEMPTY = {"type": "array", "minItems": 1}
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["system", "title", "version", "start_conditions", "team", "steps", "inform",
                 "aftermath", "safeguards"],
    "properties": {
        "system": {"type": "string"},
        "title": _TEXT,
        "version": {"type": ["string", "number"]},
        "start_conditions": {**_NONEMPTY, "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "zh", "en", "keywords"],
            "properties": {"id": {"type": "string", "pattern": r"^[a-z0-9-]+$"},
                           "zh": {"type": "string", "minLength": 1},
                           "en": {"type": "string", "minLength": 1},
                           "keywords": {**_NONEMPTY, "items": {"type": "string", "minLength": 1}},
                           "impacts": {**_NONEMPTY, "items": {"enum": list(IMPACTS)}}}}},
        "team": {"type": "object", "additionalProperties": False, "required": ["leader", "members"],
                 "properties": {"leader": _CONTACT, "members": {**_NONEMPTY, "items": _CONTACT}}},
        "vendors": {"type": "array", "items": _CONTACT},
        "group_support": {"type": "array", "items": _CONTACT},
        "steps": {**_NONEMPTY, "items": {
            "type": "object", "additionalProperties": False, "required": ["zh", "en"],
            "properties": {"zh": {"type": "string", "minLength": 1},
                           "en": {"type": "string", "minLength": 1},
                           "owner": {"type": "string"},
                           "minutes": {"type": "integer", "minimum": 0}}}},
        "inform": {"type": "object", "additionalProperties": False, "required": ["roles"],
                   "properties": {"roles": {**_NONEMPTY, "items": {"enum": list(INFORM_ROLES)}},
                                  "people": {"type": "array", "items": _CONTACT},
                                  "note": _TEXT}},
        "aftermath": {**_NONEMPTY, "items": _TEXT},
        "safeguards": {"type": "object", "additionalProperties": False,
                       "required": list(SAFEGUARDS),
                       "properties": {k: _TEXT for k in SAFEGUARDS}},
        "questions": {"type": "object", "additionalProperties": False, "properties": {
            "remind_every_minutes": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "escalate_after_minutes": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "max_reminders": {"type": "integer", "minimum": 0}}},
    },
}


def _path(parts: Sequence[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_problems(data: Any, file: str) -> list[PlanProblem]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(PLAN_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        message = error.message
        if error.validator == "oneOf":
            # A contact is a key (string) or a mapping: explain the branch the value took,
            # not "is not of type 'string'" with a dump of the whole mapping.
            branch = 1 if isinstance(error.instance, dict) else 0
            inner = [e for e in error.context or () if e.relative_schema_path[0] == branch]
            detail = inner[0].message if inner else error.message
            message = ("must be a contacts.yaml person key, or a mapping with 'person' or "
                       f"'name' (and email, phone, duty): {detail}")
        problems.append(PlanProblem(file, _path(list(error.absolute_path)), message[:300]))
    return problems


class _Builder:
    """Turns schema-valid data into a plan, collecting the cross-reference problems."""

    def __init__(self, file: str, contacts: Contacts):
        self.file = file
        self.contacts = contacts
        self.problems: list[PlanProblem] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(PlanProblem(self.file, where, message))

    def contact(self, raw: Any, where: str) -> Contact:
        spec: dict[str, Any] = {"person": raw} if isinstance(raw, str) else dict(raw)
        person: Person | None = None
        if spec.get("person"):
            person = self.contacts.people.get(spec["person"])
            if person is None:
                self.problem(where, f"unknown person '{spec['person']}' (not in contacts.yaml)")
        contact = Contact(
            name=spec.get("name") or (person.name if person else str(spec.get("person"))),
            email=spec.get("email") or (person.email if person else None),
            phone=spec.get("phone") or (person.phone if person else None),
            duty=spec.get("duty", ""), person=spec.get("person"),
            airflow_user=spec.get("airflow_user") or (person.airflow_user if person else None))
        if (person is not None or not spec.get("person")) and not (contact.email or contact.phone):
            self.problem(where, "has neither an email nor a phone: nobody could reach them")
        return contact

    def contacts_of(self, items: Sequence[Any], where: str) -> tuple[Contact, ...]:
        return tuple(self.contact(c, f"{where}[{i}]") for i, c in enumerate(items))


def parse_plan(data: Any, file: str, contacts: Contacts,
               systems: Mapping[str, str]) -> tuple[ContingencyPlan | None, list[PlanProblem]]:
    """Validate one plan document against the known ``systems`` (code -> label, from the
    vocabulary); the plan, or None and every problem found."""
    problems = _schema_problems(data, file)
    if problems:
        return None, problems
    b = _Builder(file, contacts)
    stem = PurePosixPath(file).stem
    if data["system"] != stem:
        b.problem("system", f"'{data['system']}' does not match the file name '{stem}.yaml'")
    if data["system"] not in systems:
        b.problem("system", f"'{data['system']}' is not a system of vocabulary.yaml "
                            f"({', '.join(systems)}): add it there first")
    seen: set[str] = set()
    conditions = []
    for i, c in enumerate(data["start_conditions"]):
        if c["id"] in seen:
            b.problem(f"start_conditions[{i}].id", f"duplicate id '{c['id']}'")
        seen.add(c["id"])
        conditions.append(StartCondition(c["id"], Text(c["zh"], c["en"]),
                                         tuple(k.strip() for k in c["keywords"]),
                                         tuple(c.get("impacts") or IMPACTS)))
    team = data["team"]
    leader = b.contact(team["leader"], "team.leader")
    if not leader.phone:
        b.problem("team.leader", "the team leader needs a phone: he is called first")
    members = b.contacts_of(team["members"], "team.members")
    inform_spec = data["inform"]
    inform: list[Contact] = []
    for i, role in enumerate(inform_spec["roles"]):
        people = contacts.role(role)
        if not people:
            b.problem(f"inform.roles[{i}]", f"role '{role}' has nobody in contacts.yaml")
        inform += [Contact(p.name, p.email, p.phone, role, p.key, p.airflow_user)
                   for p in people]
    inform += b.contacts_of(inform_spec.get("people") or (), "inform.people")
    note = inform_spec.get("note") or {"zh": "按预案通报", "en": "As the plan says"}
    plan = ContingencyPlan(
        system=data["system"], title=Text(**data["title"]), version=str(data["version"]),
        file=file, start_conditions=tuple(conditions), leader=leader, members=members,
        vendors=b.contacts_of(data.get("vendors") or (), "vendors"),
        steps=tuple(Step(Text(s["zh"], s["en"]), s.get("owner", ""), s.get("minutes"))
                    for s in data["steps"]),
        inform=_unique(inform), inform_note=Text(**note),
        aftermath=tuple(Text(**a) for a in data["aftermath"]),
        safeguards={k: Text(**data["safeguards"][k]) for k in SAFEGUARDS},
        group_support=b.contacts_of(data.get("group_support") or (), "group_support"),
        cadence=Cadence(**data.get("questions") or {}),
        system_label=systems.get(data["system"], data["system"]),
    )
    return (None, b.problems) if b.problems else (plan, [])


def _unique(people: Sequence[Contact]) -> tuple[Contact, ...]:
    seen: set[str] = set()
    out = []
    for p in people:
        key = p.email or p.phone or p.name
        if key not in seen:
            seen.add(key)
            out.append(p)
    return tuple(out)


@dataclass
class PlanBook:
    """Every usable plan by system, and the problems of those that are not."""

    plans: dict[str, ContingencyPlan] = field(default_factory=dict)
    problems: list[PlanProblem] = field(default_factory=list)

    def get(self, system: str) -> ContingencyPlan:
        if system in self.plans:
            return self.plans[system]
        raise PlanUnavailable(system, [p for p in self.problems
                                       if PurePosixPath(p.file).stem == system])


# ------------------------------------------------------------------- 101.2 coverage
@dataclass(frozen=True)
class Coverage:
    """The machine's suggestion for 101.2; the team decides (the HITL answer)."""

    covered: bool
    matched: tuple[dict[str, Any], ...]  # condition id, text, the keywords found
    reason: str


def assess_coverage(plan: ContingencyPlan, symptoms: str, impact: str) -> Coverage:
    """Which start conditions the symptoms meet at this impact (101.2's first guess)."""
    matched: list[dict[str, Any]] = []
    for condition in plan.start_conditions:
        found = [m for k in condition.keywords if (m := meets(k, symptoms)) is not None]
        if found and impact in condition.impacts:
            matched.append({"id": condition.id, "text": condition.text.both(), "keywords": found})
    if matched:
        reason = (f"症状符合预案启动条件 / symptoms meet start condition(s): "
                  f"{', '.join(str(m['id']) for m in matched)}")
    else:
        reason = ("症状与预案启动条件均不符 / the symptoms meet none of the plan's start "
                  "conditions at this impact")
    return Coverage(bool(matched), tuple(matched), reason)
