"""101.4: the rounds: vendors engaged, a solution approved and carried out, or escalated.

The task bodies of one round (``steps`` has what every step shares).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from incident_ops.airflow.emergency.ids import round_task
from incident_ops.airflow.emergency.steps import (
    brief_of,
    carry,
    collect_rounds,
    created,
    event,
    history_markdown,
    round_answers,
)
from incident_ops.policy import emergency as em

if TYPE_CHECKING:
    from incident_ops.airflow.bootstrap import Services

log = logging.getLogger(__name__)


def engage_vendors_task(s: Services, k: int) -> dict[str, Any]:
    """101.4: the team organises the vendors to analyse it and build a solution (round k)."""
    brief = brief_of(s.context)
    n = brief.round_offset + k
    rounds, _ = collect_rounds(s.context, brief)
    carry(s, brief, em.decide_route(brief, s.info.run_id, em.ROUTE_VENDORS, n, rounds),
          f"round_{k}.engage_vendors")
    return {"round": n, "history_md": history_markdown(rounds),
            "events": [event("101.4", "automation", f"第 {n} 轮，已通知厂商 / round {n}: "
                                                    "vendors notified")]}


def carry_out_task(s: Services, k: int) -> dict[str, Any]:
    """101.4 after approval: tell the group, raise the emergency change, ask the group centre."""
    brief = brief_of(s.context)
    n = brief.round_offset + k
    proposed, approvals = round_answers(s.context, k, n)
    if proposed is None:
        raise RuntimeError(f"round {k}: no proposed solution to carry out")
    solution = em.Solution.from_params(proposed.params)
    plan = em.decide_carry_out(brief, s.info.run_id, n, solution, approvals)
    applied = carry(s, brief, plan, f"round_{k}.carry_out")
    change_id = created(s, applied, plan)
    events = []
    if change_id:
        events.append(event("101.4", "automation", f"紧急变更 / emergency change #{change_id} "
                                                   "raised"))
    if solution.group_support_needed:
        events.append(event("101.4", "automation", "已请求集团中心支持 / group centre asked"))
    return {"round": n, "change_request": change_id,
            "group_asked": solution.group_support_needed, "events": events}


def approval_outcome_task(context: Any, k: int, lifted_task: str, next_task: str) -> str:
    """Approved and carried out → ask whether it is lifted; rejected → the next round."""
    done = context["ti"].xcom_pull(task_ids=round_task(k, "carry_out"))
    _, approvals = round_answers(context, k, k)
    rejected = [a for a in approvals if a.first == em.REJECT]
    if rejected or not done:
        log.info("round %d: solution rejected by %s; a new round", k,
                 ", ".join(a.by for a in rejected) or "?")
        return next_task
    return lifted_task


def escalate_task(s: Services) -> dict[str, Any]:
    """Every round of this run done and not lifted: tell management, continue in a new run."""
    brief = brief_of(s.context)
    rounds, _ = collect_rounds(s.context, brief)
    done = max((r.number for r in rounds), default=0)
    carry(s, brief, em.decide_escalation(brief, s.info.run_id, rounds), "escalate")
    continuation = {"emergency_id": brief.emergency_id, "rounds_done": done,
                    "started_at": brief.started_at.isoformat(),
                    "history": [r.to_dict() for r in rounds]}
    # Deterministic, so a retried trigger finds the run it already started.
    base = re.sub(r"[^A-Za-z0-9_.~:+-]", "_", brief.emergency_id)[:180]
    return {"conf": {**brief.params(), "dry_run": brief.dry_run,
                     "continuation": continuation},
            "run_id": f"{base}.from-round-{done + 1}"}
