"""How the canonical model is laid out in Request Tracker 5: queues, custom fields, lifecycle.

One source of truth for both the adapter (which reads and writes these names) and the
embedded desk's provisioning (which creates them). Values of Select fields come from the
vocabulary, so adding a close code to ``vocabulary.yaml`` and re-provisioning is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

INCIDENTS = "Incidents"
PROBLEMS = "Problems"
MAJOR_REPORTS = "Major Incident Reports"
CHANGES = "Change Requests"
AUTOMATION = "Automation"
QUEUES = {
    INCIDENTS: "事件 Incidents (ITIL incident process 100)",
    PROBLEMS: "问题 Problems (root-cause analysis, 101.6)",
    MAJOR_REPORTS: "重大事件报告 Major incident reports (101.6)",
    CHANGES: "紧急变更 Emergency change requests (101.4)",
    AUTOMATION: "自动化租约 Automation leases (one ticket per pipeline; see docs/exactly-once.md)",
}
LIFECYCLE = "incident"


@dataclass(frozen=True)
class CustomField:
    field: str  # canonical Ticket attribute
    name: str  # the RT custom field name
    type: str  # RT type: Freeform | Text | Select | DateTime
    vocabulary: str | None = None  # vocabulary section the Select values come from
    values: tuple[str, ...] = ()  # fixed Select values
    multiple: bool = False
    queues: tuple[str, ...] = (INCIDENTS,)
    description: str = ""


ALL_QUEUES = (INCIDENTS, PROBLEMS, MAJOR_REPORTS, CHANGES)  # the process's own queues
DESK_QUEUES = (*ALL_QUEUES, AUTOMATION)  # every queue the desk is provisioned with

# Select fields reject unknown values at the desk; the fields that other systems feed
# (category, system, close code, vendor) stay Freeform, as they are on real desks, so the
# policy sees the unknown value and reports it by ticket and field.
CUSTOM_FIELDS: tuple[CustomField, ...] = (
    CustomField("source", "Source", "Select", vocabulary="sources", description="事件来源"),
    CustomField("category", "Category", "Freeform", description="事件分类"),
    CustomField("system", "System", "Freeform", queues=ALL_QUEUES, description="事件所属系统类型"),
    CustomField("impact", "Impact", "Select", vocabulary="impacts", queues=ALL_QUEUES,
                description="事件影响度"),
    CustomField("dispatched_by_helpdesk", "Dispatched By Help Desk", "Select",
                values=("yes", "no"), description="帮助台派单"),
    CustomField("handler_tier", "Handler Tier", "Select", vocabulary="tiers",
                description="处理人所属层级"),
    CustomField("resolver_role", "Resolver Role", "Select", vocabulary="resolver_roles",
                description="事件解决人角色"),
    CustomField("solution", "Solution", "Text", description="解决方案"),
    CustomField("close_code", "Close Code", "Freeform", description="结束代码"),
    CustomField("recovered_at", "Business Recovery Time", "DateTime", description="业务恢复时间"),
    CustomField("faulty_vendor", "Faulty Vendor", "Freeform", description="故障厂商"),
    CustomField("config_item", "Configuration Item", "Freeform", description="配置项"),
    CustomField("completed_at", "Completed At", "DateTime", description="实际完成时间"),
    CustomField("confirmation", "Confirmation", "Select", vocabulary="confirmations",
                description="请求人确认"),
    CustomField("confirmation_asked_at", "Confirmation Asked At", "DateTime",
                description="请求确认时间"),
    CustomField("escalation", "Escalation", "Freeform", multiple=True, description="已触发的升级"),
    CustomField("escalation_due", "Escalation Due", "DateTime", description="下一次升级时间"),
    CustomField("urgent_notified", "Urgent Notified", "Freeform", description="紧急通知记录"),
    CustomField("first_line_cannot_handle", "First Line Cannot Handle", "Select",
                values=("yes", "no"), description="一线无法独立处理 (100.5.2)"),
    CustomField("automation_keys", "Automation Keys", "Freeform", multiple=True,
                queues=ALL_QUEUES, description="已执行的自动化动作"),
    CustomField("automation", "Automation", "Freeform", queues=ALL_QUEUES,
                description="最近一次自动化动作: 规则与 DAG 运行"),
    CustomField("idempotency_key", "Idempotency Key", "Freeform", queues=DESK_QUEUES,
                description="创建幂等键"),
)

BY_FIELD = {cf.field: cf for cf in CUSTOM_FIELDS}
BY_NAME = {cf.name: cf for cf in CUSTOM_FIELDS}

# Statuses of the incident lifecycle and the moves between them (spec 100.6-100.7).
# resolved is inactive in RT terms so that RT stamps its Resolved date, and so that the
# "open queue" (__Active__) is what 100.8 watches. closed is final: a reopen is a new ticket.
LIFECYCLE_STATUSES = {
    "initial": ["new"],
    "active": ["assigned-l1", "assigned-l2", "in-progress"],
    "inactive": ["resolved", "closed"],
}
LIFECYCLE_TRANSITIONS = {
    # Creating straight into resolved/closed is how other systems import finished tickets.
    "": ["new", "assigned-l1", "assigned-l2", "in-progress", "resolved", "closed"],
    "new": ["assigned-l1", "assigned-l2", "in-progress", "resolved", "closed"],
    "assigned-l1": ["new", "assigned-l2", "in-progress", "resolved", "closed"],
    "assigned-l2": ["new", "assigned-l1", "in-progress", "resolved", "closed"],
    "in-progress": ["assigned-l1", "assigned-l2", "resolved", "closed"],
    "resolved": ["assigned-l1", "assigned-l2", "in-progress", "closed"],
    "closed": [],
}
