"""100.6 Recording the resolution: is a resolved ticket's record complete enough to close?

Each rule is named after its step and can be switched off in ``closure.yaml``; the result
lists every failed rule with a bilingual explanation, so the bounce comment tells the
resolver exactly what to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from incident_ops.model import Ticket
from incident_ops.reference import Vocabulary


@dataclass(frozen=True)
class Gap:
    """One thing missing or wrong in a resolution record."""

    field: str  # canonical Ticket field
    step: str  # e.g. "100.6.4"
    zh: str
    en: str

    def line(self) -> str:
        return f"[{self.step}] {self.zh} / {self.en}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _coded(ticket: Ticket, vocab: Vocabulary, field: str, section: str, step: str,
           zh: str, en: str) -> list[Gap]:
    value = getattr(ticket, field)
    if _blank(value):
        return [Gap(field, step, f"缺少{zh}", f"{en} is missing")]
    if not vocab.knows(section, value):
        return [Gap(field, step, f"{zh}“{value}”不在配置的取值中",
                    f"{en} '{value}' is not a known value")]
    return []


def check_resolution(ticket: Ticket, vocab: Vocabulary, rules: dict[str, bool],
                     now: datetime) -> list[Gap]:
    """Every gap in the resolution record of ``ticket`` (empty when it may be closed)."""
    on = {name for name, enabled in rules.items() if enabled}
    gaps: list[Gap] = []
    if "solution" in on and _blank(ticket.solution):
        gaps.append(Gap("solution", "100.6.1", "缺少解决方案", "solution is missing"))
    if "category" in on:
        gaps += _coded(ticket, vocab, "category", "categories", "100.6.2", "事件分类", "category")
    if "system" in on:
        gaps += _coded(ticket, vocab, "system", "systems", "100.6.2", "事件所属系统类型",
                       "affected system type")
    if "close_code" in on:
        gaps += _coded(ticket, vocab, "close_code", "close_codes", "100.6.3", "结束代码",
                       "close code")
    is_fault = bool(vocab.attr("categories", ticket.category, "fault", False))
    if "fault_details" in on and is_fault:
        if ticket.recovered_at is None:
            gaps.append(Gap("recovered_at", "100.6.4", "故障缺少业务恢复时间",
                            "business recovery time is missing for a fault"))
        if _blank(ticket.faulty_vendor):
            gaps.append(Gap("faulty_vendor", "100.6.4", "故障缺少故障厂商",
                            "faulty vendor is missing for a fault"))
    if "impact" in on:
        gaps += _coded(ticket, vocab, "impact", "impacts", "100.6.5", "事件影响度", "impact level")
    if "resolver_role" in on:
        gaps += _coded(ticket, vocab, "resolver_role", "resolver_roles", "100.6.6",
                       "事件解决人角色", "resolver role")
    needs_ci = bool(vocab.attr("categories", ticket.category, "needs_ci", False))
    if "config_item" in on and needs_ci and _blank(ticket.config_item):
        gaps.append(Gap("config_item", "100.6.7", "故障/告警未关联配置项",
                        "the failed configuration item is not linked"))
    if "completed_at" in on:
        gaps += _completion_time(ticket, now)
    return gaps


# Completion times are typed by hand to the minute, and desks' clocks differ by seconds:
# a time within a minute of creation (or of now) is taken as it is, not bounced.
CLOCK_TOLERANCE = timedelta(minutes=1)


def _completion_time(ticket: Ticket, now: datetime) -> list[Gap]:
    done = ticket.completed_at
    if done is None:
        return [Gap("completed_at", "100.6.8", "缺少实际完成时间",
                    "actual completion time is missing")]
    if done > now + CLOCK_TOLERANCE:
        return [Gap("completed_at", "100.6.8", "实际完成时间晚于当前时间",
                    "actual completion time is in the future")]
    if done < ticket.created - CLOCK_TOLERANCE:
        return [Gap("completed_at", "100.6.8", "实际完成时间早于事件创建时间",
                    "actual completion time is before the ticket was created")]
    return []
