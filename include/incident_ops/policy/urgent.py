"""100.5 Re-confirming urgent incidents: who is told, once, when a ticket is (or becomes) urgent.

An urgent open ticket that does not yet record a notification for its priority goes to the
incident manager and the management concerned with the affected system, by e-mail and SMS.
When first line has recorded that it cannot handle the incident alone (100.5.2), or the
impact is major, the message says that the emergency sub-process (101) applies and carries
ready-to-run commands that start the emergency DAG with this ticket filled in.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from incident_ops.model import Ticket, id_order
from incident_ops.policy.plan import NOTIFY, Action, Finding, Notice, Plan, action_key
from incident_ops.reference import Contacts, Vocabulary

URGENT = "urgent"
EMERGENCY_DAG = "emergency_response"


def emergency_applies(ticket: Ticket) -> bool:
    return ticket.first_line_cannot_handle or ticket.impact == "major"


def emergency_conf(ticket: Ticket) -> dict[str, Any]:
    """The trigger parameters of the emergency DAG, filled in from the ticket."""
    return {"ticket_id": ticket.id, "system": ticket.system or "", "impact": ticket.impact or "",
            "symptoms": ticket.subject, "reporter": ticket.handler or ""}


def emergency_commands(ticket: Ticket, airflow_url: str) -> dict[str, str]:
    conf = json.dumps(emergency_conf(ticket), ensure_ascii=False)
    body = json.dumps({"logical_date": None, "conf": emergency_conf(ticket)}, ensure_ascii=False)
    return {
        "cli": f"airflow dags trigger {EMERGENCY_DAG} --conf {shlex.quote(conf)}",
        "rest": (f"curl -X POST {airflow_url}/api/v2/dags/{EMERGENCY_DAG}/dagRuns "
                 f"-H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' "
                 f"-d {shlex.quote(body)}"),
        "ui": f"{airflow_url}/dags/{EMERGENCY_DAG}/trigger",
    }


def decide_urgent(tickets: Iterable[Ticket], vocab: Vocabulary, contacts: Contacts,
                  now: datetime, run_id: str, airflow_url: str) -> Plan:
    plan = Plan(pipeline="urgent_incidents", run_id=run_id)
    for ticket in sorted(tickets, key=lambda t: id_order(t.id)):
        if not ticket.is_open or ticket.priority != URGENT or ticket.urgent_notified == URGENT:
            continue
        people = [*contacts.role("incident_manager")]
        managers = contacts.for_system(ticket.system, "management")
        if not managers:
            plan.findings.append(Finding(ticket.id, "system",
                                         f"no management configured for system "
                                         f"'{ticket.system}'; told the default management",
                                         severity="warning"))
            managers = contacts.role("management")
        people += [p for p in managers if p not in people]
        emails = tuple(p.email for p in people if p.email)
        phones = tuple(p.phone for p in people if p.phone)
        emergency = emergency_applies(ticket)
        context: dict[str, Any] = {
            "id": ticket.id, "subject": ticket.subject, "run_id": run_id,
            "priority": vocab.both("priorities", ticket.priority),
            "impact": vocab.both("impacts", ticket.impact),
            "system": vocab.both("systems", ticket.system),
            "handler": ticket.handler or "—", "created": f"{ticket.created:%Y-%m-%d %H:%M} UTC",
            "first_line_cannot_handle": ticket.first_line_cannot_handle,
            "emergency": emergency,
            "commands": emergency_commands(ticket, airflow_url) if emergency else {},
            "told": ", ".join(p.name for p in people),
        }
        notices = [Notice("urgent", emails, context)] if emails else []
        if phones:
            notices.append(Notice("urgent", phones, context, channel="sms"))
        step = "100.5.2" if ticket.first_line_cannot_handle else "100.5.1"
        plan.actions.append(Action(
            kind=NOTIFY, ticket_id=ticket.id, step=step, rule="urgent.notify",
            reason=f"urgent: told {context['told']}" + (" · 101 applies" if emergency else ""),
            key=action_key("urgent", ticket.id, URGENT),
            fields={"urgent_notified": URGENT},
            comment=(f"【100.5 紧急事件通知】{now:%Y-%m-%d %H:%M} UTC 已通知 / notified: "
                     f"{context['told']}" + ("；适用应急处理子流程 101 / the emergency "
                                              "sub-process 101 applies" if emergency else "")),
            notices=tuple(notices), expected_version=ticket.version))
    return plan
