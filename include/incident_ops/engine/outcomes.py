"""What an apply reports: one ``ActionOutcome`` per action, gathered in ``Applied``.

``engine.applier`` makes them; the pipelines' apply tasks, the plan page and the watermark
(``engine.watermark``) read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from incident_ops.desk.port import BadQuery, RejectedChange, TicketNotFound


@dataclass
class ActionOutcome:
    key: str
    kind: str
    ticket_id: str
    step: str
    rule: str
    # done | skipped | stale | failed | waiting | deferred | undelivered | dropped
    outcome: str
    message: str = ""
    created_id: str | None = None
    undelivered: list[str] = field(default_factory=list)  # messages still owed
    # A failure another attempt may cure (the desk down, a timeout, a follow-up still owed);
    # a change the desk refused, a ticket gone or a message refused for good is not.
    retry: bool = False
    # When the engine recorded the outcome (ISO, UTC): the time the action was done (or
    # found done, stale, failed), not the time its plan was made.
    at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Applied:
    outcomes: list[ActionOutcome]  # one per action of the plan that was considered
    replayed: list[ActionOutcome] = field(default_factory=list)  # earlier attempts' debts

    @property
    def undelivered(self) -> list[str]:
        return list(dict.fromkeys(m for o in [*self.replayed, *self.outcomes]
                                  for m in o.undelivered))

    @property
    def retry_failures(self) -> list[ActionOutcome]:
        """Failures another attempt may cure: apply fails so Airflow tries again."""
        return [o for o in [*self.replayed, *self.outcomes]
                if o.outcome == "failed" and o.retry]

    @property
    def deferred(self) -> bool:
        """Nothing was applied: another run held the lease (or it was lost at the start)."""
        return bool(self.outcomes) and all(o.outcome == "deferred" for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return counts


def retryable(error: BaseException) -> bool:
    """Whether trying again may cure a desk failure: not for a change the desk refused, a
    ticket it does not have or a query it cannot run."""
    return not isinstance(error, (RejectedChange, TicketNotFound, BadQuery))
