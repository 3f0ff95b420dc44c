"""Matching a plan's start-condition keywords against symptoms by meaning, not by spelling.

Ops describe the same failure in other words than the plan's author: "全省 OSS 工单派发中断"
(work-order dispatch interrupted) is the OSS plan's "工单调度" (work-order dispatching) down.
A keyword is met when the symptoms contain it as written, or when each of its words is there
as written or as a word of the same meaning (a group below, Chinese and English together).

Chinese has no spaces: a keyword is cut into the words of the groups it contains and, for the
rest, into two-character words (the common length of a Chinese word); English keywords are
cut at spaces and match as word beginnings ("fail" meets "failed"). Pure: no I/O.
"""

from __future__ import annotations

import re
from functools import cache

# Words that mean the same thing in a symptom, each group in Chinese and English. Kept to
# what incident symptoms say; a group only widens a keyword word that belongs to it.
GROUPS: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    # stopped / down / failing
    {"中断", "不可用", "宕机", "故障", "失败", "瘫痪", "停止", "不通", "挂了", "无法使用",
     "down", "fail", "failure", "unavailable", "outage", "stopped", "interrupted", "broken"},
    # dispatching work
    {"调度", "派发", "派单", "分派", "下发", "分发", "dispatch", "dispatching"},
    # slow / late
    {"延迟", "缓慢", "响应慢", "卡顿", "超时", "慢", "delay", "delayed", "slow", "late",
     "timeout", "timed out"},
    # cannot log in
    {"登录", "登陆", "log in", "login", "sign in"},
    # paying
    {"缴费", "支付", "付费", "payment", "pay"},
    # topping up
    {"充值", "top-up", "top up", "recharge"},
    # alarms
    {"告警", "报警", "alarm", "alarms", "alert"},
    # work orders
    {"工单", "work order", "work-order", "ticket"},
    # collection
    {"采集", "collection", "collector"},
    # backlog
    {"积压", "堆积", "backlog", "queue build-up"},
    # short messages
    {"短信", "sms", "text message"},
))
_GROUP_OF: dict[str, frozenset[str]] = {w: g for g in GROUPS for w in g}
_CJK = re.compile(r"[\u3400-\u9fff]")


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@cache
def words(keyword: str) -> tuple[str, ...]:
    """The words of a keyword: group words first (longest), the rest two characters at a
    time (an odd leftover joins the word before it); English at spaces."""
    keyword = _normal(keyword)
    if not _CJK.search(keyword):
        return tuple(w for w in keyword.split(" ") if w)
    known = sorted((w for w in _GROUP_OF if _CJK.search(w)), key=len, reverse=True)
    out: list[str] = []
    rest = ""

    def flush() -> None:
        nonlocal rest
        chunks = [rest[i:i + 2] for i in range(0, len(rest), 2)]
        if len(chunks) > 1 and len(chunks[-1]) == 1:
            chunks[-2:] = [chunks[-2] + chunks[-1]]
        out.extend(c for c in chunks if c.strip())
        rest = ""

    i = 0
    while i < len(keyword):
        hit = next((w for w in known if keyword.startswith(w, i)), None)
        if hit is None:
            rest += keyword[i]
            i += 1
            continue
        flush()
        out.append(hit)
        i += len(hit)
    flush()
    return tuple(w.strip() for w in out if w.strip())


def _said(word: str, said: str) -> str | None:
    """The word of ``word``'s meaning found in ``said`` (itself first), or None."""
    for candidate in (word, *sorted(_GROUP_OF.get(word, ()), key=len, reverse=True)):
        if _CJK.search(candidate):
            if candidate in said:
                return candidate
        elif re.search(rf"(?<![a-z]){re.escape(candidate)}", said):
            return candidate
    return None


def meets(keyword: str, symptoms: str) -> str | None:
    """How ``symptoms`` meet ``keyword``: the keyword itself, ``keyword (word + word)`` when
    met by meaning, or None."""
    said = _normal(symptoms)
    if _normal(keyword) in said:
        return keyword
    parts = words(keyword)
    found = [_said(w, said) for w in parts]
    if len(parts) < 2 or any(f is None for f in found):
        return None
    return f"{keyword} ({' + '.join(f for f in found if f)})"
