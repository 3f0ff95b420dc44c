"""What the platform team's on-call is told about the pipelines themselves (pure).

Three alerts, each mailed at most once (its key gives a deterministic Message-ID):

- **failed**: a DAG run failed; one mail per failed run, naming the failed tasks with links
  to their logs and, for a pipeline, what apply left undone. Failed runs in a row form a
  *streak*: every mail of a streak replies to its first one, so a mail client shows one
  conversation per outage instead of a pile of separate mails.
- **deadline**: a run of a DAG with a deadline (Airflow's Deadline Alerts) has not succeeded
  within the configured time. One per outage: only the streak's first run alerts; a run
  still queued or running alerts when no streak is open (it hangs: nothing failed yet).
- **recovered**: the first successful run after a streak, with how long it lasted.

The streak lives in a small JSON state per DAG (``OnCallState``), kept by the Airflow layer
in a Variable; the functions here only compute the next state and the mails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from incident_ops.notify.messages import Email

FAILED, DEADLINE, RECOVERED = "failed", "deadline", "recovered"
KEPT_KEYS = 50  # alert keys remembered per DAG: enough to refuse a repeat within an outage


def alert_key(dag_id: str, run_id: str, kind: str) -> str:
    """The idempotency key of an alert: one per (DAG, run, kind), hence one Message-ID."""
    return f"oncall:{dag_id}:{run_id}:{kind}"


@dataclass(frozen=True)
class Streak:
    """Failed runs of one DAG in a row, since its last success."""

    first_run: str
    since: datetime
    runs: int = 1
    last_run: str = ""
    last_tasks: tuple[str, ...] = ()
    thread: str | None = None  # Message-ID of the streak's first alert, once it was sent

    def to_dict(self) -> dict[str, Any]:
        return {"first_run": self.first_run, "since": self.since.isoformat(),
                "runs": self.runs, "last_run": self.last_run or self.first_run,
                "last_tasks": list(self.last_tasks), "thread": self.thread}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Streak:
        return cls(first_run=str(data["first_run"]), since=datetime.fromisoformat(data["since"]),
                   runs=int(data.get("runs", 1)), last_run=str(data.get("last_run") or ""),
                   last_tasks=tuple(data.get("last_tasks") or ()), thread=data.get("thread"))


@dataclass(frozen=True)
class OnCallState:
    """What on-call alerting remembers about one DAG between its runs."""

    streak: Streak | None = None
    recovered_at: datetime | None = None  # end of the last streak
    sent: tuple[str, ...] = field(default_factory=tuple)  # alert keys already mailed

    def to_dict(self) -> dict[str, Any]:
        return {"streak": self.streak.to_dict() if self.streak else None,
                "recovered_at": self.recovered_at.isoformat() if self.recovered_at else None,
                "sent": list(self.sent[-KEPT_KEYS:])}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> OnCallState:
        if not data:
            return cls()
        streak = data.get("streak")
        recovered = data.get("recovered_at")
        return cls(streak=Streak.from_dict(streak) if streak else None,
                   recovered_at=datetime.fromisoformat(recovered) if recovered else None,
                   sent=tuple(data.get("sent") or ()))

    def was_sent(self, key: str) -> bool:
        return key in self.sent

    def with_sent(self, key: str, message_id: str | None = None) -> OnCallState:
        """Remember ``key`` as mailed; the first mail of a streak becomes its thread."""
        streak = self.streak
        if streak is not None and streak.thread is None and message_id:
            streak = replace(streak, thread=message_id)
        return replace(self, streak=streak, sent=(*self.sent, key)[-KEPT_KEYS:])


def record_failure(state: OnCallState, run_id: str, at: datetime,
                   failed_tasks: Sequence[str] = ()) -> OnCallState:
    """A run failed: it opens a streak, or extends the open one (a run counted once)."""
    streak = state.streak
    if streak is None:
        streak = Streak(first_run=run_id, since=at, last_run=run_id,
                        last_tasks=tuple(failed_tasks))
    elif run_id not in (streak.first_run, streak.last_run):
        streak = replace(streak, runs=streak.runs + 1, last_run=run_id,
                         last_tasks=tuple(failed_tasks))
    return replace(state, streak=streak)


def record_success(state: OnCallState, at: datetime) -> tuple[OnCallState, Streak | None]:
    """A run succeeded: the open streak (returned) ends here."""
    if state.streak is None:
        return state, None
    return replace(state, streak=None, recovered_at=at), state.streak


def deadline_reason(state: OnCallState, run_id: str, run_state: str,
                    queued_at: datetime | None) -> str | None:
    """Why a missed deadline of run ``run_id`` should reach on-call, or None when it need not.

    Airflow calls this once per run that has not succeeded in time; an outage spans many
    runs, so only one of them speaks for it: the streak's first run, or a run that hangs
    while no streak is open.
    """
    streak = state.streak
    if run_state == "success":
        return None
    if run_state in ("queued", "running"):
        return None if streak else "still not finished"
    if streak is not None:
        return "failed, and no run has succeeded since" if streak.first_run == run_id else None
    # No streak recorded: the failure callback has not been processed yet, unless a later
    # run already succeeded (and closed the streak this run opened).
    if state.recovered_at is not None and queued_at is not None and \
            state.recovered_at >= queued_at:
        return None
    return "failed, and no run has succeeded since"


@dataclass(frozen=True)
class Silence:
    """An on-call silence: until when, for which DAGs (empty: all)."""

    until: datetime
    dags: tuple[str, ...] = ()
    reason: str = ""

    @classmethod
    def parse(cls, data: Any) -> Silence:
        """From the Variable's JSON; a ValueError names what is wrong."""
        if not isinstance(data, Mapping) or "until" not in data:
            raise ValueError('expected {"until": "<ISO time with zone>", "dags": [...], '
                             '"reason": "..."}')
        until = datetime.fromisoformat(str(data["until"]))
        if until.tzinfo is None:
            raise ValueError(f"until {data['until']!r} has no time zone (e.g. +08:00)")
        dags = data.get("dags") or ()
        if isinstance(dags, str):
            dags = (dags,)
        return cls(until=until, dags=tuple(str(d) for d in dags),
                   reason=str(data.get("reason") or ""))

    def covers(self, dag_id: str, now: datetime) -> bool:
        return now < self.until and (not self.dags or dag_id in self.dags)


@dataclass(frozen=True)
class TaskLink:
    task_id: str
    url: str
    error: str = ""  # why it failed, as the task recorded it (empty: see the log)


@dataclass(frozen=True)
class RunFacts:
    """What an alert says about one run."""

    dag_id: str
    run_id: str
    run_url: str
    state: str = ""
    reason: str = ""
    failed_tasks: tuple[TaskLink, ...] = ()
    summary: tuple[str, ...] = ()  # one line per action kind, undelivered, findings
    plan_page: str | None = None
    queued_at: datetime | None = None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days {hours % 24} h"


def _minutes(value: float) -> str:
    return f"{value:g} min"


def failure_alert(facts: RunFacts, streak: Streak, to: Sequence[str], *, now: datetime,
                  silence_hint: str) -> Email:
    tasks = ", ".join(t.task_id for t in facts.failed_tasks) or "no task failed (run marked "\
        "failed)"
    subject = f"[incident-ops] 失败 FAILED: {facts.dag_id} ({tasks})"
    if streak.runs > 1:
        subject += f", {_ordinal(streak.runs)} failed run in a row"
    context = {"kind": FAILED, "facts": facts, "streak": streak, "subject": subject,
               "since": _duration(now - streak.since), "silence_hint": silence_hint}
    return _render(context, to, alert_key(facts.dag_id, facts.run_id, FAILED), streak)


def deadline_alert(facts: RunFacts, streak: Streak | None, to: Sequence[str], *,
                   minutes: float, why: str, now: datetime, silence_hint: str) -> Email:
    subject = (f"[incident-ops] 超时 DEADLINE: {facts.dag_id} has not succeeded for "
               f"{_minutes(minutes)}")
    context = {"kind": DEADLINE, "facts": facts, "streak": streak, "subject": subject,
               "minutes": _minutes(minutes), "why": why,
               "since": _duration(now - streak.since) if streak else None,
               "silence_hint": silence_hint}
    return _render(context, to, alert_key(facts.dag_id, facts.run_id, DEADLINE), streak)


def recovery_alert(facts: RunFacts, streak: Streak, to: Sequence[str], *, now: datetime,
                   silence_hint: str) -> Email:
    runs = f"{streak.runs} failed run{'s' if streak.runs > 1 else ''}"
    subject = f"[incident-ops] 恢复 RECOVERED: {facts.dag_id} succeeded after {runs}"
    context = {"kind": RECOVERED, "facts": facts, "streak": streak, "subject": subject,
               "since": _duration(now - streak.since), "silence_hint": silence_hint}
    return _render(context, to, alert_key(facts.dag_id, facts.run_id, RECOVERED), streak)


def _render(context: dict[str, Any], to: Sequence[str], key: str, streak: Streak | None
            ) -> Email:
    from incident_ops.notify.compose import environment

    html = environment().get_template("mail/oncall.html.j2").render(**context)
    text = _plain().get_template("mail/oncall.txt.j2").render(**context)
    references = (streak.thread,) if streak is not None and streak.thread else ()
    return Email(to=tuple(to), subject=context["subject"], html=html, text=text, key=key,
                 references=references)


@lru_cache(maxsize=1)
def _plain() -> Any:
    """Plain-text mail bodies: no HTML escaping, block tags leave no blank lines."""
    import jinja2

    from incident_ops.notify.compose import TEMPLATES

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, autoescape=False,
                              trim_blocks=True, lstrip_blocks=True)


def summary_from_xcom(planned: Mapping[str, Any] | None, applied: Mapping[str, Any] | None
                      ) -> tuple[str, ...]:
    """The run's summary from what its plan and apply tasks recorded (XCom): what was
    planned, what apply did, what is still owed, what input was bad."""
    if not planned:
        return ()
    plan = planned.get("plan") or {}
    actions = plan.get("actions") or []
    lines: list[str] = []
    if applied:
        by_kind: dict[str, dict[str, int]] = {}
        for o in applied.get("outcomes") or []:
            counts = by_kind.setdefault(str(o.get("kind")), {})
            outcome = str(o.get("outcome"))
            counts[outcome] = counts.get(outcome, 0) + 1
        lines += [f"{kind}: " + ", ".join(f"{n} {o}" for o, n in sorted(c.items()))
                  for kind, c in sorted(by_kind.items())]
        # A message owed since an earlier attempt can be listed twice (replayed and still
        # owed); on-call counts messages, not list entries.
        undelivered = list(dict.fromkeys(applied.get("undelivered") or []))
        lines.append(f"undelivered messages: {len(undelivered)}"
                     + (f" ({'; '.join(undelivered[:5])}{' …' if len(undelivered) > 5 else ''})"
                        if undelivered else ""))
        failed = [o for o in [*(applied.get("replayed") or []),
                              *(applied.get("outcomes") or [])] if o.get("outcome") == "failed"]
        if failed:  # on-call hears which tickets, not only how many
            named = [f"#{o.get('ticket_id')} {o.get('kind')}: {o.get('message')}"
                     for o in failed[:10]]
            lines.append(f"failed actions: {len(failed)} ({'; '.join(named)}"
                         f"{' …' if len(failed) > 10 else ''})")
    else:
        kinds: dict[str, int] = {}
        for a in actions:
            kinds[str(a.get("kind"))] = kinds.get(str(a.get("kind")), 0) + 1
        lines += [f"{kind}: {n} planned, not applied" for kind, n in sorted(kinds.items())]
    lines.append(f"findings (bad input): {len(plan.get('findings') or [])}")
    return tuple(lines)
