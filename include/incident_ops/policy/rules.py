"""The ids of the closure rules, as data: what the engine stamps on a ticket it changes and
what reports read back from the desk.

Every automated write carries the field ``automation`` = ``"<step> <rule> · run <run id>"``
(``stamp``; the engine's ``audit_fields`` writes it, and has since the first version), and
the idempotency key of what it did (``action_key(<kind>, ...)`` = ``"<kind>:<hash>"``). The
rule ids and key kinds below are the contract: ``policy.closure`` acts under them, reports
classify tickets by them (``stamp_rule``, ``key_kind``), never by a comment's wording or a
subject.
"""

from __future__ import annotations

# 100.7.1 / 100.7.4: closing a resolved ticket, and its duplicates with it.
CLOSE_AUTO_SOURCE = "close.auto-source"  # monitoring / auto-transfer: closed without asking
CLOSE_CONFIRMED = "close.confirmed"  # the requester confirmed (100.7.2 -> 100.7.1)
CLOSE_NO_ANSWER = "close.no-answer"  # the policy closes without the requester's answer
CLOSE_HANDLED_BY_SUPPORT = "close.handled-by-support"  # 100.7.4
CLOSE_DUPLICATE_CASCADE = "close.duplicate-cascade"  # duplicates closed with their master
# 100.6 / 100.7.2 / 100.7.3: the record bounced, the requester asked, reminded, rejected.
COMPLETENESS = "completeness"
CONFIRM_ASK = "confirm.ask"
CONFIRM_REMIND = "confirm.remind"
CONFIRM_REJECTED = "confirm.rejected"  # closed unsuccessful, a copy reopened
DUPLICATES_CYCLE = "duplicates.cycle"  # a duplicate link that closed a cycle, broken

# Kinds of idempotency key (the part before ":"), where reports need one.
BOUNCE_KEY = "bounce"  # a 100.6 bounce, kept on the bounced ticket's automation_keys
REOPEN_KEY = "reopen"  # the key a 100.7.3 reopened copy is created under

_RUN = " · run "


def stamp(step: str, rule: str, run_id: str) -> str:
    """The ``automation`` field of a ticket the engine changed under ``rule``."""
    return f"{step} {rule}{_RUN}{run_id}"


def stamp_rule(automation: str | None) -> str:
    """The rule id of an ``automation`` stamp ("" when there is none)."""
    head = (automation or "").partition(_RUN)[0]
    return head.partition(" ")[2]


def stamp_step(automation: str | None) -> str:
    """The process step of an ``automation`` stamp ("" when there is none)."""
    return (automation or "").partition(_RUN)[0].partition(" ")[0]


def key_kind(key: str | None) -> str:
    """The kind of an idempotency key (``action_key``'s first part)."""
    return (key or "").partition(":")[0] if ":" in (key or "") else ""
