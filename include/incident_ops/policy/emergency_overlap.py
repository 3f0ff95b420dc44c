"""One emergency per incident (issue 24): which running emergency a new start would double.

Two emergencies on one incident convene the same team, leaders and group HQ twice and ask
the same questions twice. A new start for an incident whose emergency is still running is
therefore refused, naming that emergency, unless whoever starts it says it is a separate
emergency and why (``start_anyway`` with a reason: recorded on the incident and in the run).

Each run's first task records a *claim* (its incident, its emergency, when it was
triggered) where every run can read it, before it looks at the others; the rules here decide
from the claims of the runs still running, the same way in every run:

- a continuation run is the same emergency as the run it continues: never in the way;
- a dry run sends and creates nothing: it neither waits for nor refuses anybody;
- a run that has started its emergency, or was triggered earlier and is still checking, is
  in the way; one that was refused is not. Each run claims before it looks, so of two runs
  checking at once at least one sees the other, and exactly one goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

CHECKING, STARTED, REFUSED = "checking", "started", "refused"


@dataclass(frozen=True)
class RunClaim:
    """What a run of the emergency DAG says about itself before it acts."""

    run_id: str
    ticket_id: str
    emergency_id: str  # the first run's id; a continuation keeps it
    run_after: str  # when it was triggered (ISO, UTC): the order between two starts
    status: str = CHECKING
    dry_run: bool = False
    start_anyway: bool = False
    triggered_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunClaim:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def order(self) -> tuple[str, str]:
        return (self.run_after, self.run_id)


def in_the_way(me: RunClaim, others: Iterable[RunClaim]) -> list[RunClaim]:
    """The running emergencies of ``me``'s incident that a start of ``me`` would double."""
    if me.dry_run:
        return []
    return [c for c in others
            if c.run_id != me.run_id and c.ticket_id == me.ticket_id and not c.dry_run
            and c.emergency_id != me.emergency_id and c.status != REFUSED
            and (c.status == STARTED or c.order() < me.order())]


def reason_problem(conf: Mapping[str, Any]) -> str | None:
    """What is wrong with a trigger's ``start_anyway`` (None when nothing is)."""
    if conf.get("start_anyway") and not str(conf.get("start_anyway_reason") or "").strip():
        return ("start_anyway needs start_anyway_reason: why this is a separate emergency "
                "(it is recorded on the incident)")
    return None


def refusal(ticket_id: str, running: Iterable[tuple[str, str | None, str]]) -> str:
    """The message of a refused start: the running emergency's run(s), who started each,
    a link to each, and the way to start anyway. ``running``: (run id, by, link)."""
    named = "; ".join(f"{run_id} (started by {by or '?'}) {link}" for run_id, by, link in running)
    return (f"An emergency for incident #{ticket_id} is already running: {named}. Answer its "
            "questions there, or abort it if it was started by mistake. Nothing was sent for "
            "this trigger. A genuinely separate emergency on the same incident: trigger again "
            'with "start_anyway": true and "start_anyway_reason": "<why>" (recorded on the '
            "incident). / 该事件单已有应急在进行中；如确属另一起应急，请勾选 start_anyway "
            "并填写原因。")
