"""Words of the manager report in Chinese (default) and English: titles, metrics, columns.

Codes of ticket fields get their labels from ``vocabulary.yaml``; the report's own codes
(closure outcomes, escalation rungs, metric names) get theirs here. ``Labels`` is what the
HTML template, the charts and the workbook all read, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from incident_ops.reference import Vocabulary
from incident_ops.reports.kpis import NOT_SET

LANGUAGES = ("zh", "en")

KIND = {"daily": ("日报", "daily report"), "weekly": ("周报", "weekly report"),
        "monthly": ("月报", "monthly report")}
WEEKDAYS = (("周一", "Mon"), ("周二", "Tue"), ("周三", "Wed"), ("周四", "Thu"), ("周五", "Fri"),
            ("周六", "Sat"), ("周日", "Sun"))

# metric -> (zh, en, unit); the headline cards and the summary sheet, in this order.
METRICS: dict[str, tuple[str, str, str]] = {
    "created": ("新建事件", "Created", ""),
    "resolved": ("已解决", "Resolved", ""),
    "closed": ("已关闭", "Closed", ""),
    "still_open": ("新建未解决", "Created, still open", ""),
    "sla_pct": ("SLA 达成率", "SLA met", "%"),
    "response_pct": ("响应达成率", "Response target met", "%"),
    "mean_ttr_h": ("平均解决时长", "Mean time to resolve", "h"),
    "p90_ttr_h": ("P90 解决时长", "P90 time to resolve", "h"),
    "urgent": ("紧急事件", "Urgent incidents", ""),
    "major": ("重大影响事件", "Major-impact incidents", ""),
    "auto_closed": ("自动关闭 (100.7.1)", "Auto-closed (100.7.1)", ""),
    "confirmed": ("用户确认关闭", "Closed on confirmation", ""),
    "reopened": ("重开 (100.7.3 不成功)", "Reopened (100.7.3)", ""),
    "reopen_rate_pct": ("重开率", "Reopen rate", "%"),
    "reopen_tickets": ("新建重开单", "Reopened tickets created", ""),
    "bounced": ("解决记录退回 (100.6)", "Incomplete resolutions (100.6)", ""),
    "bounce_rate_pct": ("退回率", "Incomplete-resolution rate", "%"),
    "duplicates": ("重复事件", "Duplicates", ""),
    "duplicate_masters": ("有重复的主事件", "Masters with duplicates", ""),
    "escalated": ("触发升级的事件", "Escalated tickets", ""),
    "sla_measured": ("纳入 SLA 统计", "Measured against SLA", ""),
    "sla_met": ("SLA 达成", "Within SLA", ""),
    "response_measured": ("纳入响应统计", "Measured against the response target", ""),
    "response_met": ("按时响应", "Responded in time", ""),
    "bad_resolution_time": ("完成时间早于创建时间", "Completion before creation", ""),
}
HEADLINE_CARDS = ("created", "resolved", "closed", "sla_pct", "response_pct", "mean_ttr_h",
                  "p90_ttr_h", "reopen_rate_pct", "bounce_rate_pct", "urgent", "major")
# Metrics where a rise is good news (the others: a rise is bad, counts are neutral).
HIGHER_IS_BETTER = {"sla_pct", "response_pct", "resolved", "closed"}
LOWER_IS_BETTER = {"mean_ttr_h", "p90_ttr_h", "reopen_rate_pct", "bounce_rate_pct", "urgent",
                   "major", "reopened", "bounced", "escalated"}

OUTCOMES = {
    "auto": ("自动关闭 (监控/转单 100.7.1)", "Auto-closed (monitoring or transfer, 100.7.1)"),
    "confirmed": ("用户确认后关闭", "Closed after the requester confirmed"),
    "no_answer": ("未答复按策略关闭", "Closed without an answer (policy)"),
    "support": ("一线/二线自行关闭 (100.7.4)", "Closed by L1/L2 (100.7.4)"),
    "cascade": ("重复事件随主单关闭", "Duplicates closed with master"),
    "reopened": ("不成功并重开 (100.7.3)", "Unsuccessful, reopened (100.7.3)"),
    "manual": ("人工关闭 (无自动化记录)", "Closed by hand (no automation stamp)"),
}
RUNGS = {"at-risk": ("即将超时", "At risk"), "breached": ("已超时", "Breached"),
         "convene": ("召集专家 (100.8.2)", "Experts convened (100.8.2)"),
         "management": ("上报管理层 (100.8.3)", "Escalated to management (100.8.3)")}

# column -> (zh, en): every table column the report shows.
COLUMNS: dict[str, tuple[str, str]] = {
    "code": ("代码", "Code"), "label": ("名称", "Name"), "created": ("新建", "Created"),
    "closed": ("关闭", "Closed"), "tickets": ("事件数", "Tickets"), "count": ("次数", "Count"),
    "previous": ("上期", "Previous"), "delta": ("变化", "Change"),
    "share_pct": ("占比 %", "Share %"), "resolved": ("已解决", "Resolved"),
    "mean_ttr_h": ("平均时长 (h)", "Mean (h)"), "p90_ttr_h": ("P90 (h)", "P90 (h)"),
    "target_h": ("SLA 目标 (h)", "SLA target (h)"), "measured": ("纳入统计", "Measured"),
    "met": ("达成", "Met"), "sla_pct": ("达成率 %", "Met %"),
    "previous_sla_pct": ("上期达成率 %", "Previous met %"),
    "master_id": ("主事件", "Master"), "duplicates": ("重复数", "Duplicates"),
    "subject": ("标题", "Subject"), "handler": ("处理人", "Handler"),
    "handled": ("处理数", "Handled"), "bounced": ("被退回", "Bounced"),
    "rate_pct": ("退回率 %", "Rate %"), "id": ("工单号", "Ticket"),
    "priority": ("优先级", "Priority"), "impact": ("影响度", "Impact"),
    "system": ("系统", "System"), "status": ("状态", "Status"),
    "ttr_h": ("解决时长 (h)", "Time to resolve (h)"), "bucket": ("时段", "When"),
    "metric": ("指标", "Metric"), "value": ("本期", "This period"),
    "source": ("来源", "Source"), "category": ("分类", "Category"),
    "close_code": ("结束代码", "Close code"), "config_item": ("配置项", "Configuration item"),
    "faulty_vendor": ("故障厂商", "Vendor"), "resolver_role": ("解决人角色", "Resolver role"),
    "duplicate_of": ("重复于", "Duplicate of"), "escalation": ("升级", "Escalation"),
    "automation": ("自动化记录", "Automation"), "sla_h": ("SLA 计时 (h)", "SLA clock (h)"),
    "sla_met": ("SLA 达成", "Within SLA"), "created_at": ("创建时间", "Created at"),
    "completed": ("完成时间", "Completed at"), "closed_at": ("关闭时间", "Closed at"),
    "resolved_at": ("解决时间", "Resolved at"),
    "respond_target_h": ("响应目标 (h)", "Response target (h)"),
    "mean_response_h": ("平均响应 (h)", "Mean response (h)"),
    "response_pct": ("响应达成率 %", "Responded in time %"),
    "previous_response_pct": ("上期响应达成率 %", "Previous responded in time %"),
    "responded_at": ("响应时间", "Responded at"), "response_h": ("响应计时 (h)",
                                                             "Response clock (h)"),
    "response_met": ("按时响应", "Responded in time"),
}

# table -> (zh, en, code field whose labels the "code" column takes)
TABLES: dict[str, tuple[str, str, str | None]] = {
    "resolution_priority": ("解决时长与 SLA (按优先级)", "Time to resolve and SLA by priority",
                            "priorities"),
    "response_priority": ("响应时长与达成率 (按优先级)", "Response and its target by priority",
                          "priorities"),
    "volume_priority": ("新建事件 (按优先级)", "Created by priority", "priorities"),
    "volume_system": ("新建事件 (按系统)", "Created by system", "systems"),
    "volume_source": ("新建事件 (按来源)", "Created by source", "sources"),
    "volume_category": ("新建事件 (按分类)", "Created by category", "categories"),
    "closure_outcomes": ("关闭方式", "How tickets were closed", "outcomes"),
    "escalations": ("升级 (按阶梯)", "Escalations by rung", "rungs"),
    "bounces_by_handler": ("解决记录退回 (按处理人)", "Incomplete resolutions by handler", None),
    "duplicates": ("重复事件最多的主事件", "Masters with most duplicates", None),
    "top_config_items": ("故障/告警最多的配置项", "Configuration items by faults and alarms",
                         None),
    "top_vendors": ("故障最多的厂商", "Vendors by faults", None),
    "urgent": ("紧急事件", "Urgent incidents", None),
    "major": ("重大影响事件 (应急)", "Major-impact incidents (emergencies)", None),
    "reopened": ("不成功并重开的事件", "Unsuccessful and reopened", None),
    "trend": ("趋势", "Trend", None),
}

# Workbook sheet names (Excel allows 31 characters): the tables' short names, the summary
# and the ticket detail. A table missing here is named after its title, cut between words.
SHEETS: dict[str, tuple[str, str]] = {
    "summary": ("概览", "Summary"),
    "resolution_priority": ("解决时长与SLA", "Resolution and SLA"),
    "response_priority": ("响应时长与达成率", "Response and target"),
    "volume_priority": ("按优先级", "By priority"),
    "volume_system": ("按系统", "By system"),
    "volume_source": ("按来源", "By source"),
    "volume_category": ("按分类", "By category"),
    "closure_outcomes": ("关闭方式", "How closed"),
    "escalations": ("升级", "Escalations"),
    "bounces_by_handler": ("解决记录退回", "Incomplete resolutions"),
    "duplicates": ("重复事件", "Duplicates"),
    "top_config_items": ("配置项", "Configuration items"),
    "top_vendors": ("厂商", "Vendors"),
    "urgent": ("紧急事件", "Urgent"),
    "major": ("重大影响事件", "Major impact"),
    "reopened": ("重开事件", "Reopened"),
    "trend": ("趋势", "Trend"),
    "detail": ("工单明细", "Tickets"),
}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("事件管理{kind}", "Incident management {kind}"),
    "period": ("统计周期", "Period"),
    "colon": ("：", ": "),
    "headline": ("主要指标", "Headline figures"),
    "change_and_previous": ("{change}，上期 {value}", "{change}, previous {value}"),
    "ttr_meta": ("用时 {value}", "resolved in {value}"),
    "html_only": ("图表与全部表格见本邮件的 HTML 版本。",
                  "The charts and every table are in the HTML version of this mail."),
    "compared": ("对比上期", "Compared with"),
    "empty": ("本期没有新建、解决或关闭的事件单。",
              "No incident tickets were created, resolved or closed in this period."),
    "charts": ("图表", "Charts"),
    "none": ("无", "None"),
    "more_rows": ("另有 {n} 条，见附件 Excel。", "{n} more in the attached workbook."),
    "attachment": ("明细见附件 Excel 工作簿：{name}", "Details in the attached workbook: {name}"),
    "footer": ("本报告由事件管理自动化流程生成 (DAG {dag}, run {run})，数据来自服务台。"
               "SLA 按 sla.yaml 计时：中、低优先级按工作时间。",
               "Generated by the incident-process automation (DAG {dag}, run {run}) from the "
               "service desk. SLA clock per sla.yaml: medium and low priority count business "
               "hours."),
    "trend_created": ("新建", "Created"), "trend_resolved": ("解决", "Resolved"),
    "chart_trend": ("新建与解决趋势", "Created and resolved"),
    "chart_priority": ("新建事件 (按优先级，本期/上期)", "Created by priority (this/previous)"),
    "chart_system": ("新建事件 (按系统)", "Created by system"),
    "chart_sla": ("SLA 达成率 (按优先级)", "SLA met by priority"),
    "chart_outcomes": ("关闭方式", "How tickets were closed"),
    "this_period": ("本期", "This period"), "previous_period": ("上期", "Previous"),
    "detail_capped": ("仅列出前 {n} 条 (共 {total} 条)。", "First {n} of {total} tickets."),
    "local_time": ("时间为 {tz} 本地时间。", "Times are local to {tz}."),
    "not_set": ("未填写", "(not set)"),
}


@dataclass(frozen=True)
class Labels:
    vocab: Vocabulary
    lang: str = "zh"

    def __post_init__(self) -> None:
        if self.lang not in LANGUAGES:
            raise ValueError(f"report language {self.lang!r} is not one of {LANGUAGES}")

    def _pick(self, pair: tuple[str, ...]) -> str:
        return pair[0] if self.lang == "zh" else pair[1]

    def text(self, key: str, **values: object) -> str:
        return self._pick(TEXT[key]).format(**values)

    def metric(self, key: str) -> str:
        return self._pick(METRICS[key])

    def unit(self, key: str) -> str:
        return METRICS[key][2]

    def column(self, key: str) -> str:
        return self._pick(COLUMNS[key]) if key in COLUMNS else key

    def table(self, key: str) -> str:
        zh, en, _ = TABLES[key]
        return zh if self.lang == "zh" else en

    def code(self, section: str | None, code: object) -> str:
        """The label of ``code`` in ``section`` (a vocabulary section, outcomes or rungs)."""
        if code is None or code == NOT_SET:
            return self.text("not_set")
        text = str(code)
        if section == "outcomes":
            return self._pick(OUTCOMES[text]) if text in OUTCOMES else text
        if section == "rungs":
            return self._pick(RUNGS[text]) if text in RUNGS else text
        if section is None:
            return text
        return self.vocab.label(section, text, self.lang)

    def sheet(self, key: str) -> str:
        """The workbook sheet of ``key`` (a table, "summary" or "detail")."""
        if key in SHEETS:
            return self._pick(SHEETS[key])
        return self.table(key) if key in TABLES else key

    def code_section(self, table: str) -> str | None:
        return TABLES[table][2] if table in TABLES else None

    def title(self, kind: str) -> str:
        return self.text("title", kind=self._pick(KIND[kind]))

    def day(self, day: date) -> str:
        weekday = self._pick(WEEKDAYS[day.weekday()])
        return f"{day.isoformat()} ({weekday})"
