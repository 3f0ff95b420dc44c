"""Deterministic, realistic sample tickets for the embedded desk (pure: records, no I/O).

The mix is what a Chinese provincial operator's business-support (BSS) service desk holds
on an ordinary day: monitoring alarm storms (a master alarm and its duplicates, each
duplicate ``MemberOf`` the master), single alarms, tickets auto-transferred from the
customer-service system, user tickets by phone/e-mail/portal that the help desk dispatched
to L1/L2, faults with their vendors and configuration items, complete and incomplete
resolutions, urgent and major incidents (with problem and major-incident-report tickets),
overdue open tickets, and every status of the incident lifecycle.

``generate(count, seed, now)`` returns the same records for the same arguments. Custom
field names come from ``schema.BY_FIELD``, codes from ``vocabulary.yaml`` and people from
``contacts.yaml``, so nothing here spells a field or code the rest of the product does not
know. Tests and benchmarks may use the records directly; the seeder feeds them to RT.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incident_ops.desk.rt import schema
from incident_ops.embedded_desk.rtconfig import desk_users, load_yaml

CFValue = str | tuple[str, ...]

# Canonical field -> RT custom-field name, resolved once from the schema.
CF = {f: cf.name for f, cf in schema.BY_FIELD.items()}

VENDORS_BY_SYSTEM = {
    "crm": ("亚信", "华为"), "billing": ("亚信", "思特奇"), "boss": ("华为", "亚信"),
    "sms-gw": ("中兴", "华为"), "portal": ("浪潮", "东软"), "oss": ("中兴", "华为"),
    "dw": ("浪潮", "东软"),
}
INFRA_VENDORS = ("浪潮", "华为", "中兴", "新华三", "Oracle")
CI_BY_SYSTEM = {
    "crm": ("CRM-APP-01", "CRM-APP-02", "CRM-APP-03", "CRM-DB-RAC01", "CRM-ESB-01"),
    "billing": ("BIL-RATING-01", "BIL-RATING-02", "BIL-ACCT-01", "BIL-DB-RAC02", "BIL-MQ-01"),
    "boss": ("BOSS-APP-01", "BOSS-APP-04", "BOSS-DB-RAC01", "BOSS-OPENAPI-01"),
    "sms-gw": ("SMSGW-01", "SMSGW-02", "SMSGW-SMPP-01"),
    "portal": ("WEB-PORTAL-01", "WEB-PORTAL-02", "WEB-NGINX-01", "PAY-GW-01"),
    "oss": ("OSS-APP-01", "OSS-WF-01", "OSS-DB-01"),
    "dw": ("DW-ETL-01", "DW-HADOOP-NN01", "DW-GP-01", "DW-REPORT-01"),
}
BRANCHES = ("城东", "城西", "高新区", "经开区", "滨江", "北站", "南湖", "县城关")
SURNAMES = ("wang", "li", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu",
            "xu", "sun", "hu", "zhu", "gao", "lin", "he", "guo", "ma", "luo")
GIVEN = ("wei", "fang", "min", "jing", "lei", "yan", "jun", "tao", "ming", "hui", "qiang",
         "li", "xin", "yu", "hong", "ping", "bo", "ling", "jie", "dan")
CS_SYSTEM_EMAIL = "kefu-zhuandan@cs.example.cn"  # the customer-service system's account

ALARMS = (  # (subject template, metric words for the description)
    ("{ci} CPU使用率 {p}% 超过阈值 90%", "CPU使用率"),
    ("{ci} 内存使用率 {p}% 持续超过 5 分钟", "内存使用率"),
    ("{ci} 表空间 {ts} 使用率 {p}%", "表空间使用率"),
    ("{ci} 进程 {proc} 异常退出", "进程状态"),
    ("{ci} 文件系统 /data 使用率 {p}%", "文件系统使用率"),
    ("{ci} 心跳丢失超过 3 分钟", "主机心跳"),
    ("接口 {api} 调用超时率 {p}%", "接口超时率"),
    ("消息队列 {mq} 积压 {n} 条", "队列积压"),
)
TRANSFERS = (  # (system, category, subject)
    ("billing", "fault", "用户 {phone} 反映话费扣费异常，要求核查"),
    ("boss", "fault", "用户 {phone} 套餐变更后次月仍按原资费扣费"),
    ("portal", "fault", "用户 {phone} 网上营业厅充值成功但余额未到账"),
    ("sms-gw", "fault", "用户 {phone} 收不到登录验证码短信"),
    ("crm", "request", "用户 {phone} 申请补打历史发票"),
    ("crm", "data-fix", "用户 {phone} 实名资料与证件不符需更正"),
    ("billing", "data-fix", "用户 {phone} 宽带续费后仍提示欠费停机"),
    ("crm", "consult", "用户 {phone} 咨询积分兑换规则"),
)
USER_TICKETS = {  # category -> (system, subject)
    "fault": (
        ("crm", "{branch}营业厅 CRM 登录报错 ORA-12541，无法受理业务"),
        ("boss", "{branch}营业厅 发票打印失败，提示打印服务无响应"),
        ("crm", "{branch}营业厅 开户时提示“工号无权限”"),
        ("portal", "网上营业厅 话费查询页面打不开"),
        ("dw", "经营分析系统 日报数据未按时生成"),
        ("billing", "计费账务系统 月末出账进度明显慢于往月"),
        ("sms-gw", "短信网关 群发短信下发延迟超过 30 分钟"),
        ("oss", "OSS 装机工单派发接口报错"),
        ("boss", "{branch}营业厅 缴费成功但系统未销账"),
    ),
    "request": (
        ("crm", "申请为新员工 {person} 开通 CRM 工号"),
        ("dw", "申请开通经营分析系统 {report} 报表查询权限"),
        ("boss", "申请调整 {branch}营业厅 打印机配置"),
        ("portal", "申请在网上营业厅首页上线 {product} 活动入口"),
    ),
    "consult": (
        ("boss", "咨询：{product} 在系统中如何配置资费"),
        ("billing", "咨询：月结账期调整对出账的影响"),
        ("dw", "咨询：{report} 报表口径说明"),
    ),
    "data-fix": (
        ("crm", "数据修改：用户 {phone} 证件号码录入错误需更正"),
        ("billing", "数据修改：集团客户 {corp} 账户归属错误"),
        ("boss", "数据修改：{branch}营业厅 营业款日报数据重复"),
    ),
}
PRODUCTS = ("5G畅享套餐", "全家享融合套餐", "流量加油包", "宽带包年", "校园卡")
REPORTS = ("渠道发展日报", "存量用户保有", "ARPU 分析", "欠费用户清单")
CORPS = ("市第一人民医院", "滨江物流公司", "城投集团", "市教育局")
SOLUTIONS = {
    "fault": (
        "重启 {ci} 应用服务后恢复正常，已观察 30 分钟无复发",
        "厂商 {vendor} 远程排查，升级补丁后恢复",
        "回滚前一日上线的版本，业务恢复",
        "切换至备用节点，主节点待厂商 {vendor} 更换故障硬盘",
        "数据库连接池耗尽，调整参数并重启后恢复",
        "核实为网络链路抖动，链路恢复后业务正常",
    ),
    "alarm": (
        "清理归档日志并扩容表空间，告警消除",
        "清理 /data 历史文件，使用率降至 60%",
        "业务高峰导致，峰值过后自动恢复",
        "重启 {ci} 上的异常进程后告警消除",
        "扩容消息队列消费者，积压已处理完毕",
    ),
    "request": ("已按申请开通，请用户重新登录验证", "已完成配置调整并告知申请人"),
    "consult": ("已电话解答用户咨询", "已邮件回复相关口径说明"),
    "data-fix": ("已修正数据并重新出账，已告知用户", "已按工单核实并更正数据"),
}
COMMENTS = (
    "已联系用户了解现象，正在排查",
    "已通知厂商 {vendor} 远程协助分析",
    "初步判断与昨晚变更有关，正在核实",
    "已收集日志，等待二线支持分析",
    "影响范围正在确认中",
)
PROBLEM_SUBJECT = "问题单：{subject} 根因分析"
REPORT_SUBJECT = "《重大事件报告》{subject}"
CHANGE_SUBJECT = "紧急变更：{system_zh} 扩容/回退（关联事件 {key}）"

STATUS_WEIGHTS = {"new": 8, "assigned-l1": 12, "assigned-l2": 10, "in-progress": 12,
                  "resolved": 18, "closed": 40}
OPEN = ("new", "assigned-l1", "assigned-l2", "in-progress")


@dataclass(frozen=True)
class SeedEvent:
    """One change in a ticket's history: who did what when (status, owner, fields, comment)."""

    at: datetime
    actor: str  # RT user name
    status: str | None = None
    owner: str | None = None
    fields: Mapping[str, CFValue] = field(default_factory=dict)  # RT CF name -> value
    comment: str | None = None


@dataclass(frozen=True)
class SeedTicket:
    """A ticket to load, with its history. ``fields`` are set at creation."""

    key: str  # unique within a generation; links refer to it
    scenario: str
    queue: str
    subject: str
    description: str
    priority: str  # vocabulary priority code
    created: datetime
    creator: str
    requestor: str | None
    fields: Mapping[str, CFValue]
    events: tuple[SeedEvent, ...] = ()
    status_at_create: str = "new"
    member_of: str | None = None  # key of the master (this ticket is a duplicate)
    refers_to: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        for event in reversed(self.events):
            if event.status:
                return event.status
        return self.status_at_create

    @property
    def owner(self) -> str | None:
        for event in reversed(self.events):
            if event.owner:
                return event.owner
        return None

    @property
    def updated(self) -> datetime:
        return self.events[-1].at if self.events else self.created

    def final_fields(self) -> dict[str, CFValue]:
        merged = dict(self.fields)
        for event in self.events:
            merged.update(event.fields)
        return merged

    def to_json(self, ranks: Mapping[str, int]) -> dict[str, Any]:
        """The JSON record the Perl loader reads (times as UTC 'YYYY-MM-DD HH:MM:SS')."""
        return {
            "key": self.key, "queue": self.queue, "subject": self.subject,
            "description": self.description, "priority": ranks[self.priority],
            "created": _rt_time(self.created), "creator": self.creator,
            "status": self.status_at_create, "requestor": self.requestor,
            "cf": {k: list(v) if isinstance(v, tuple) else v for k, v in self.fields.items()},
            "member_of": self.member_of, "refers_to": list(self.refers_to),
            "events": [
                {"at": _rt_time(e.at), "actor": e.actor, "status": e.status, "owner": e.owner,
                 "cf": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in e.fields.items()},
                 "comment": e.comment}
                for e in self.events
            ],
        }


def _rt_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class _People:
    helpdesk: list[str]
    l1: list[str]
    l2: list[str]
    incident_manager: list[str]
    problem_manager: list[str]
    experts: dict[str, list[str]]


def _people(contacts: Mapping[str, Any]) -> _People:
    users = desk_users(dict(contacts))
    by_key = {u["key"]: u["desk_user"] for u in users}

    def role(name: str) -> list[str]:
        return [u["desk_user"] for u in users if u.get("role") == name]

    experts = {
        system: [by_key[k] for k in spec.get("experts", []) if k in by_key]
        for system, spec in (contacts.get("systems") or {}).items()
    }
    people = _People(helpdesk=role("helpdesk"), l1=role("l1"), l2=role("l2"),
                     incident_manager=role("incident-manager"),
                     problem_manager=role("problem-manager"), experts=experts)
    if not (people.helpdesk and people.l1 and people.l2):
        raise ValueError("contacts.yaml needs desk users with roles helpdesk, l1 and l2")
    return people


class _Generator:
    """Holds the RNG and vocabulary while ``generate`` builds the records."""

    def __init__(self, seed: int, now: datetime, vocabulary: Mapping[str, Any],
                 contacts: Mapping[str, Any]) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.vocab = vocabulary
        self.people = _people(contacts)
        self.systems = list(vocabulary["systems"])
        self.tickets: list[SeedTicket] = []
        self.customers = [f"{self.rng.choice(GIVEN)}.{self.rng.choice(SURNAMES)}{i:03d}@"
                          f"{self.rng.choice(('branch', 'customer'))}.example.cn"
                          for i in range(1, 201)]
        for section in ("sources", "categories", "impacts", "priorities", "close_codes",
                        "tiers", "resolver_roles", "confirmations"):
            if not vocabulary.get(section):
                raise ValueError(f"vocabulary.yaml: section {section!r} missing")

    # --------------------------------------------------------------- helpers
    def code(self, section: str, wanted: str) -> str:
        """A vocabulary code, checked: seeds must only hold codes the vocabulary knows."""
        if wanted not in self.vocab[section]:
            raise ValueError(f"vocabulary.yaml: {section} has no code {wanted!r}")
        return wanted

    def zh(self, section: str, code: str) -> str:
        return str((self.vocab[section].get(code) or {}).get("zh", code))

    def key(self) -> str:
        return f"seed{self.seed}-{len(self.tickets) + 1:05d}"

    def pick(self, weights: Mapping[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def phone(self) -> str:
        prefix = f"1{self.rng.choice('3578')}{self.rng.randint(0, 9)}"
        return f"{prefix}****{self.rng.randint(0, 9999):04d}"

    def minutes(self, lo: float, hi: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(lo, hi))

    def l2_for(self, system: str) -> str:
        return self.rng.choice(self.people.experts.get(system) or self.people.l2)

    def age_for(self, status: str, overdue_share: float = 0.15) -> timedelta:
        """How long ago a ticket with this final status was created."""
        if status == "closed":
            return timedelta(days=self.rng.uniform(1, 90))
        if status == "resolved":
            return timedelta(days=self.rng.uniform(0.3, 10))
        if self.rng.random() < overdue_share:  # overdue: open for days or weeks
            return timedelta(days=self.rng.uniform(3, 30))
        return timedelta(hours=self.rng.uniform(0.2, 36))

    def priority_for(self, category: str, source: str) -> str:
        if source == "monitoring":
            weights = {"urgent": 8, "high": 40, "medium": 42, "low": 10}
        elif category == "fault":
            weights = {"urgent": 6, "high": 24, "medium": 50, "low": 20}
        else:
            weights = {"urgent": 1, "high": 9, "medium": 50, "low": 40}
        return self.code("priorities", self.pick(weights))

    def impact_for(self, priority: str) -> str:
        table = {"urgent": {"high": 80, "medium": 20}, "high": {"high": 40, "medium": 60},
                 "medium": {"medium": 70, "low": 30}, "low": {"low": 90, "medium": 10}}
        return self.code("impacts", self.pick(table[priority]))

    def vendor(self, system: str, ci: str) -> str:
        if "-DB-" in ci or "RAC" in ci or ci.startswith("DW-GP"):
            return self.rng.choice(("Oracle", "浪潮", "华为"))
        if self.rng.random() < 0.25:
            return self.rng.choice(INFRA_VENDORS)
        return self.rng.choice(VENDORS_BY_SYSTEM.get(system, INFRA_VENDORS))

    def fmt(self, template: str, **extra: Any) -> str:
        values = {
            "branch": self.rng.choice(BRANCHES), "phone": self.phone(),
            "person": self.rng.choice(("张晓明", "李思远", "王婷", "陈浩", "刘佳")),
            "report": self.rng.choice(REPORTS), "product": self.rng.choice(PRODUCTS),
            "corp": self.rng.choice(CORPS), "p": self.rng.randint(91, 99),
            "ts": self.rng.choice(("TBS_CRM_DATA", "TBS_BILL_IDX", "UNDOTBS1")),
            "proc": self.rng.choice(("rating_engine", "acct_daemon", "smpp_proxy", "tomcat")),
            "api": self.rng.choice(("/openapi/order/submit", "/crm/cust/query",
                                    "/pay/callback", "/bill/balance")),
            "mq": self.rng.choice(("BIL.CDR.IN", "CRM.ORDER.OUT", "SMS.MT.QUEUE")),
            "n": self.rng.randint(5, 90) * 1000, "ci": "", "vendor": "",
        }
        values.update(extra)
        return template.format(**values)

    # --------------------------------------------------------------- history
    def history(self, *, status: str, created: datetime, creator: str, system: str,
                category: str, source: str, ci: str | None, complete: bool,
                user_route: bool, force_tier: str | None = None,
                close_code: str | None = None, solution: str | None = None
                ) -> tuple[SeedEvent, ...]:
        """The events that take a new ticket to ``status``, spaced realistically in time."""
        events: list[SeedEvent] = []
        if status == "new":
            return ()
        dispatcher = self.rng.choice(self.people.helpdesk) if user_route else "root"
        tier = force_tier or ("l2" if status == "assigned-l2" else
                              "l1" if status == "assigned-l1" else
                              self.pick({"l1": 60, "l2": 40}))
        t = created + self.minutes(3, 45)
        end = self.now - timedelta(minutes=1)
        if t > end:
            t = created + (end - created) / 3

        def at(after: datetime, lo: float, hi: float) -> datetime:
            # Every event lies between the previous one and now, however young the ticket.
            return min(after + self.minutes(lo, hi), after + (end - after) / 2)

        escalated = tier == "l2" and self.rng.random() < 0.3
        first_tier = "l1" if escalated else tier
        owner = (self.rng.choice(self.people.l1) if first_tier == "l1"
                 else self.l2_for(system))
        events.append(SeedEvent(at=t, actor=dispatcher, status=f"assigned-{first_tier}",
                                owner=owner, fields={CF["handler_tier"]: first_tier}))
        if escalated:
            t = at(t, 20, 240)
            owner = self.l2_for(system)
            events.append(SeedEvent(
                at=t, actor=events[-1].owner or dispatcher, status="assigned-l2", owner=owner,
                fields={CF["handler_tier"]: "l2"},
                comment="一线无法定位，转二线支持处理"))
        if status in ("assigned-l1", "assigned-l2"):
            return tuple(events)
        t = at(t, 5, 90)
        vendor = self.vendor(system, ci or "")
        comment = (self.rng.choice(COMMENTS).format(vendor=vendor)
                   if self.rng.random() < 0.5 else None)
        events.append(SeedEvent(at=t, actor=owner, status="in-progress", comment=comment))
        if status == "in-progress":
            return tuple(events)

        # Resolution (100.6): the resolver completes the record, unless this is one of the
        # incomplete records the 100.6 check must catch.
        t = at(t, 20, 600)
        close_code = close_code or self.code("close_codes", self.pick(
            {"solved": 62, "workaround": 14, "self-healed": 10 if category == "alarm" else 2,
             "no-fault": 7, "user-cancelled": 3 if user_route else 0, "unsuccessful": 2}))
        solution = solution or self.rng.choice(SOLUTIONS.get(category, SOLUTIONS["fault"])
                                               ).format(ci=ci or system, vendor=vendor)
        resolution: dict[str, CFValue] = {
            CF["solution"]: solution,
            CF["close_code"]: close_code,
            CF["resolver_role"]: self.code("resolver_roles", tier),
            CF["completed_at"]: _rt_time(t),
        }
        if category == "fault":
            resolution[CF["recovered_at"]] = _rt_time(t - self.minutes(1, 30))
            resolution[CF["faulty_vendor"]] = vendor
        if category in ("fault", "alarm") and ci:
            resolution[CF["config_item"]] = ci
        if not complete:
            # Drop one to three of the fields 100.6 asks for.
            droppable = [k for k in resolution if k != CF["resolver_role"]] + [
                CF["resolver_role"]]
            for name in self.rng.sample(droppable, k=self.rng.randint(1, 3)):
                resolution.pop(name, None)
        if user_route and self.rng.random() < 0.6:
            resolution[CF["confirmation"]] = self.code("confirmations", "pending")
            resolution[CF["confirmation_asked_at"]] = _rt_time(t + self.minutes(1, 10))
        events.append(SeedEvent(at=t, actor=owner, status="resolved", fields=resolution))
        if status == "resolved":
            if user_route and CF["confirmation"] in resolution and self.rng.random() < 0.35:
                answer = self.pick({"confirmed": 70, "rejected": 30})
                events.append(SeedEvent(
                    at=min(t + self.minutes(30, 600), end), actor=dispatcher,
                    fields={CF["confirmation"]: self.code("confirmations", answer)},
                    comment="用户回访：" + ("问题已解决" if answer == "confirmed"
                                       else "用户反馈问题仍存在")))
            return tuple(events)

        # Closure (100.7): the help desk after confirming with the user, or directly for
        # auto-transferred tickets and alarms.
        t = at(t, 10, 2880)
        fields: dict[str, CFValue] = {}
        if user_route:
            fields[CF["confirmation"]] = self.code("confirmations", "confirmed")
        events.append(SeedEvent(at=t, actor=dispatcher if user_route else owner,
                                status="closed", fields=fields,
                                comment="用户确认问题已解决，关闭工单" if user_route else None))
        return tuple(events)

    def add(self, ticket: SeedTicket) -> SeedTicket:
        for name in list(ticket.fields) + [n for e in ticket.events for n in e.fields]:
            cf = schema.BY_NAME[name]
            if ticket.queue not in cf.queues:
                raise ValueError(f"{name} is not applied to queue {ticket.queue}")
        self.tickets.append(ticket)
        return ticket

    # ------------------------------------------------------------- scenarios
    def alarm(self, *, duplicates: int) -> None:
        system = self.rng.choice(self.systems)
        ci = self.rng.choice(CI_BY_SYSTEM.get(system, (f"{system.upper()}-01",)))
        template, metric = self.rng.choice(ALARMS)
        category = self.code("categories", "fault" if self.rng.random() < 0.3 else "alarm")
        subject = f"【告警】【{self.zh('systems', system)}】" + self.fmt(template, ci=ci)
        status = self.pick(STATUS_WEIGHTS)
        created = self.now - self.age_for(status)
        priority = self.priority_for(category, "monitoring")
        impact = self.impact_for(priority)
        fields: dict[str, CFValue] = {
            CF["source"]: self.code("sources", "monitoring"), CF["category"]: category,
            CF["system"]: system, CF["impact"]: impact,
            CF["dispatched_by_helpdesk"]: "no", CF["config_item"]: ci,
        }
        fields.update(self.urgent_fields(priority))
        level = self.zh("priorities", priority)
        description = (f"告警来源：统一监控平台\n告警对象：{ci}\n指标：{metric}\n"
                       f"首次发生：{_rt_time(created)} UTC\n告警级别：{level}\n"
                       f"请相关维护人员尽快处理。")
        complete = self.rng.random() > 0.2
        events = self.history(status=status, created=created, creator="root", system=system,
                              category=category, source="monitoring", ci=ci,
                              complete=complete, user_route=False)
        master = self.add(SeedTicket(
            key=self.key(), scenario="alarm-master" if duplicates else "alarm",
            queue=schema.INCIDENTS, subject=subject, description=description,
            priority=priority, created=created, creator="root", requestor=None,
            fields=fields, events=events))
        t = created
        for n in range(1, duplicates + 1):
            t = t + self.minutes(0.5, 6)
            if t >= self.now:
                break
            dup_fields = dict(fields)
            dup_fields.pop(CF["urgent_notified"], None)
            dup_fields.pop(CF["first_line_cannot_handle"], None)
            dup_events: tuple[SeedEvent, ...] = ()
            mstatus = master.status
            if mstatus in ("resolved", "closed") and self.rng.random() < 0.5:
                # Handled with the master (100.6.9): brief fields, same close code.
                at = master.events[-1].at + self.minutes(1, 20)
                mf = master.final_fields()
                brief: dict[str, CFValue] = {
                    CF["solution"]: f"同主告警处理：{master.subject[:30]}",
                    CF["resolver_role"]: mf.get(CF["resolver_role"], "l1"),
                    CF["handler_tier"]: mf.get(CF["handler_tier"], "l1"),
                }
                if CF["close_code"] in mf:
                    brief[CF["close_code"]] = mf[CF["close_code"]]
                dup_events = (SeedEvent(at=at, actor=master.owner or "root", status=mstatus,
                                        owner=master.owner, fields=brief),)
            self.add(SeedTicket(
                key=self.key(), scenario="alarm-duplicate", queue=schema.INCIDENTS,
                subject=subject, description=(
                    f"{description}\n重复告警：第 {n + 1} 次，发生时间 {_rt_time(t)} UTC"),
                priority=priority, created=t, creator="root", requestor=None,
                fields=dup_fields, events=dup_events, member_of=master.key))

    def urgent_fields(self, priority: str) -> dict[str, CFValue]:
        """100.5: some urgent tickets were already notified / judged beyond L1."""
        if priority != "urgent" or self.rng.random() < 0.4:
            return {}
        fields: dict[str, CFValue] = {CF["urgent_notified"]: "urgent"}
        if self.rng.random() < 0.5:
            fields[CF["first_line_cannot_handle"]] = "yes"
        return fields

    def transfer(self) -> None:
        system, category, template = self.rng.choice(TRANSFERS)
        category = self.code("categories", category)
        status = self.pick(STATUS_WEIGHTS)
        created = self.now - self.age_for(status)
        priority = self.priority_for(category, "auto-transfer")
        subject = "【客服转单】" + self.fmt(template)
        order = f"KF{created:%Y%m%d}{self.rng.randint(0, 999999):06d}"
        description = (f"客服工单号：{order}\n受理渠道：10086 热线\n{subject[6:]}\n"
                       f"用户诉求：请尽快核查处理并回复客户。\n客户星级：{self.rng.choice('二三四五')}星")
        ci = (self.rng.choice(CI_BY_SYSTEM[system]) if category == "fault"
              and system in CI_BY_SYSTEM else None)
        fields: dict[str, CFValue] = {
            CF["source"]: self.code("sources", "auto-transfer"), CF["category"]: category,
            CF["system"]: system, CF["impact"]: self.impact_for(priority),
            CF["dispatched_by_helpdesk"]: "no",
        }
        fields.update(self.urgent_fields(priority))
        events = self.history(status=status, created=created, creator="root", system=system,
                              category=category, source="auto-transfer", ci=ci,
                              complete=self.rng.random() > 0.15, user_route=False)
        self.add(SeedTicket(
            key=self.key(), scenario="auto-transfer", queue=schema.INCIDENTS, subject=subject,
            description=description, priority=priority, created=created, creator="root",
            requestor=CS_SYSTEM_EMAIL, fields=fields, events=events))

    def user(self) -> None:
        category = self.code("categories", self.pick(
            {"fault": 45, "request": 25, "consult": 15, "data-fix": 15}))
        system, template = self.rng.choice(USER_TICKETS[category])
        source = self.code("sources", self.pick(
            {"phone": 45, "email": 20, "portal": 20, "helpdesk": 15}))
        status = self.pick(STATUS_WEIGHTS)
        created = self.now - self.age_for(status)
        priority = self.priority_for(category, source)
        requestor = self.rng.choice(self.customers)
        subject = self.fmt(template)
        channel = self.zh("sources", source)
        note = self.rng.choice(("已尝试重新登录，问题依旧。", "多名营业员反映同样问题。",
                                "影响当前业务办理，请尽快处理。", "不影响其他业务。"))
        description = (f"来电/来单渠道：{channel}\n请求人：{requestor}\n问题描述：{subject}。"
                       f"\n{note}\n帮助台已初步记录，派单处理。")
        ci = self.rng.choice(CI_BY_SYSTEM[system]) if category == "fault" else None
        helpdesk = self.rng.choice(self.people.helpdesk)
        fields: dict[str, CFValue] = {
            CF["source"]: source, CF["category"]: category, CF["system"]: system,
            CF["impact"]: self.impact_for(priority), CF["dispatched_by_helpdesk"]: "yes",
        }
        fields.update(self.urgent_fields(priority))
        events = self.history(status=status, created=created, creator=helpdesk,
                              system=system, category=category, source=source, ci=ci,
                              complete=self.rng.random() > 0.15, user_route=True)
        self.add(SeedTicket(
            key=self.key(), scenario="user", queue=schema.INCIDENTS, subject=subject,
            description=description, priority=priority, created=created, creator=helpdesk,
            requestor=requestor, fields=fields, events=events))

    def major(self) -> None:
        """An emergency (101): urgent, major impact, and its follow-up tickets."""
        system = self.rng.choice(self.systems)
        ci = self.rng.choice(CI_BY_SYSTEM.get(system, (f"{system.upper()}-01",)))
        status = self.pick({"in-progress": 30, "assigned-l2": 10, "resolved": 20,
                            "closed": 40})
        created = self.now - (timedelta(days=self.rng.uniform(2, 60)) if status == "closed"
                              else timedelta(hours=self.rng.uniform(1, 30)))
        subject = (f"【重大故障】{self.zh('systems', system)} 全省业务办理中断，"
                   f"{ci} 无法提供服务")
        system_zh = self.zh("systems", system)
        description = (f"现象：全省营业厅及网上营业厅无法办理 {system_zh} 相关业务。\n"
                       f"影响范围：全省，约 {self.rng.randint(200, 900)} 个营业厅。\n"
                       f"发生时间：{_rt_time(created)} UTC\n已启动应急响应，通知事件经理。")
        fields: dict[str, CFValue] = {
            CF["source"]: self.code("sources", "monitoring"),
            CF["category"]: self.code("categories", "fault"), CF["system"]: system,
            CF["impact"]: self.code("impacts", "major"), CF["dispatched_by_helpdesk"]: "no",
            CF["config_item"]: ci, CF["urgent_notified"]: "urgent",
            CF["first_line_cannot_handle"]: "yes",
        }
        events = self.history(status=status, created=created, creator="root", system=system,
                              category="fault", source="monitoring", ci=ci, complete=True,
                              user_route=False, force_tier="l2")
        incident = self.add(SeedTicket(
            key=self.key(), scenario="major", queue=schema.INCIDENTS, subject=subject,
            description=description, priority=self.code("priorities", "urgent"),
            created=created, creator="root", requestor=None, fields=fields, events=events))
        common = {CF["system"]: system, CF["impact"]: self.code("impacts", "major")}
        if status in OPEN and self.rng.random() < 0.6:
            self.add(SeedTicket(
                key=self.key(), scenario="change", queue=schema.CHANGES,
                subject=CHANGE_SUBJECT.format(system_zh=self.zh("systems", system),
                                              key=f"#{incident.key}"),
                description="应急小组批准的紧急变更（101.4），变更窗口：立即。",
                priority="urgent", created=min(incident.updated + self.minutes(5, 60),
                                               self.now - timedelta(minutes=1)),
                creator=incident.owner or "root", requestor=None, fields=common,
                refers_to=(incident.key,)))
        if status == "closed":
            done = incident.updated
            mgr = (self.people.problem_manager or ["root"])[0]
            self.add(SeedTicket(
                key=self.key(), scenario="problem", queue=schema.PROBLEMS,
                subject=PROBLEM_SUBJECT.format(subject=subject),
                description="应急处理过程：见关联事件。\n请问题经理组织根因分析。",
                priority="high", created=done + self.minutes(10, 120),
                creator=incident.owner or "root", requestor=None, fields=common,
                refers_to=(incident.key,),
                events=(SeedEvent(at=done + self.minutes(150, 600), actor=mgr, owner=mgr,
                                  status="open"),)))
            self.add(SeedTicket(
                key=self.key(), scenario="major-report", queue=schema.MAJOR_REPORTS,
                subject=REPORT_SUBJECT.format(subject=subject),
                description=("一、事件经过\n二、处理过程与解决方案\n三、紧急状态解除时间\n"
                             "四、业务恢复情况\n五、后续改进措施"),
                priority="high", created=done + self.minutes(30, 1440),
                creator=(self.people.incident_manager or ["root"])[0], requestor=None,
                fields=common, refers_to=(incident.key,)))


def generate(count: int = 2000, seed: int = 42, now: datetime | None = None, *,
             vocabulary: Mapping[str, Any] | None = None,
             contacts: Mapping[str, Any] | None = None,
             config_dir: Path | None = None) -> list[SeedTicket]:
    """``count`` tickets in load order (a master before its duplicates, an incident before
    the tickets that refer to it). Same arguments, same records.

    ``now`` anchors every date (default: the current minute, UTC); pass a fixed one for
    reproducible records across runs.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if now is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    gen = _Generator(seed, now, vocabulary or load_yaml("vocabulary.yaml", config_dir),
                     contacts or load_yaml("contacts.yaml", config_dir))
    # Shares of scenarios (a storm yields 3-8 tickets): roughly a quarter of the tickets
    # come from monitoring, a sixth from customer service, the rest from users.
    scenarios = {"storm": 3.5, "alarm": 12, "transfer": 17, "user": 60, "major": 1}
    while len(gen.tickets) < count:
        kind = gen.pick(scenarios)
        if kind == "storm":
            gen.alarm(duplicates=gen.rng.randint(2, 7))
        elif kind == "alarm":
            gen.alarm(duplicates=0)
        elif kind == "transfer":
            gen.transfer()
        elif kind == "user":
            gen.user()
        else:
            gen.major()
    return gen.tickets[:count]
