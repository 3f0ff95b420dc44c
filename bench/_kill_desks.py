"""bench_kill's two desks: made identical (seeded, or one seeded and its database copied),
their end states read back in names both desks share, and case compared with control.

Desk states are read through RT's REST2 (ticket searches with their custom fields,
transactions written after seeding); seeded ticket ids are identical on both desks, created
copies are matched by their idempotency key, mails by (ticket, ``X-Incident-Ops-Key``,
recipients).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import requests
from _common import read_only, rest_session, say

from incident_ops.embedded_desk import EmbeddedDesk
from incident_ops.embedded_desk.seeding import seed_desk
from tests.support.mail import SmtpTestServer
from tests.support.sms import SmsReceiver

# Fields that name a run or a moment of it: compared as present / absent only.
RUN_SPECIFIC = {"Automation"}
MOMENTS = {"Confirmation Asked At", "Escalation Due"}
CATEGORIES = (("ask", "confirmation requests asked (100.7.2)"),
              ("remind", "help desk reminded (100.7.2)"),
              ("bounce", "incomplete records bounced (100.6)"),
              ("reopen", "rejected incidents reopened (100.7.3)"))
TICKET_IN_SUBJECT = re.compile(r"#(\d+)")


def _search(session: requests.Session, url: str, query: str, fields: str,
            extra: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every item of a REST2 search, keyset-paged on id (100 a page)."""
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        params = [("query", f"({query}) AND id > {after}"), ("page", "1"), ("per_page", "100"),
                  ("fields", fields), ("orderby", "id"), ("order", "ASC"), *(extra or [])]
        resp = session.get(url, params=params, timeout=300)
        resp.raise_for_status()
        items = [i for i in resp.json().get("items") or [] if isinstance(i, dict)]
        out += items
        if len(items) < 100:
            return out
        after = int(items[-1]["id"])


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("Name") or value.get("id") or "")
    return str(value or "")


def read_desk(desk: EmbeddedDesk, tx_mark: int) -> dict[str, Any]:
    """Every ticket but the Automation queue's (status, owner, queue, custom fields) and the
    ticket transactions written after ``tx_mark`` (the end of seeding), through REST2."""
    session = rest_session(desk.url, desk.user, desk.password)
    api = desk.rest_url
    try:
        items = _search(session, api + "/tickets", "Queue != 'Automation'",
                        "Subject,Status,Owner,Queue,CustomFields",
                        [("fields[Queue]", "Name"), ("fields[Owner]", "Name")])
        tickets: dict[str, dict[str, Any]] = {}
        for item in items:
            cfs: dict[str, tuple[str, ...]] = {}
            for cf in item.get("CustomFields") or []:
                values = tuple(sorted(str(v) for v in cf.get("values") or [] if v not in
                                      (None, "")))
                if values:
                    cfs[str(cf.get("name"))] = values
            tickets[str(item["id"])] = {"Subject": item.get("Subject"),
                                        "Status": item.get("Status"),
                                        "Owner": _name(item.get("Owner")),
                                        "Queue": _name(item.get("Queue")), "cf": cfs}
        txs = _search(session, api + "/transactions",
                      f"ObjectType = 'RT::Ticket' AND id > {tx_mark} AND (Type = 'Status' OR "
                      "Type = 'Comment' OR Type = 'Correspond' OR Type = 'Create')",
                      "ObjectId,Type,Field,NewValue")
    finally:
        session.close()
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for tx in txs:
        tid = str(tx.get("ObjectId"))
        kind = str(tx.get("Type"))
        if kind == "Status":
            kind = f"Status->{tx.get('NewValue')}"
        history[tid][kind] += 1
    return {"tickets": tickets, "history": history}


def canonical(snapshot: dict[str, Any], seeded: set[str]) -> dict[str, str]:
    """Ticket id -> a name that is the same on both desks: seeded tickets keep their id
    (seeding is deterministic), created ones are named by their idempotency key."""
    names: dict[str, str] = {}
    for tid, t in snapshot["tickets"].items():
        if tid in seeded:
            names[tid] = tid
        else:
            key = (t["cf"].get("Idempotency Key") or ("",))[0]
            names[tid] = f"copy[{key}]" if key else f"new[{t['Subject']}]"
    return names


def keys_of(t: dict[str, Any]) -> tuple[str, ...]:
    return t["cf"].get("Automation Keys") or ()


def mail_records(server: SmtpTestServer, names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for mail in server.mailbox.received:
        m = mail.message
        subject = str(m.get("Subject", ""))
        found = TICKET_IN_SUBJECT.search(subject)
        tid = found.group(1) if found else ""
        out.append({"ticket": names.get(tid, f"#{tid}" if tid else "?"),
                    "key": str(m.get("X-Incident-Ops-Key", "")),
                    "to": ",".join(sorted(r.lower() for r in mail.envelope_to)),
                    "message_id": str(m.get("Message-ID", "")), "subject": subject})
    return out


def outcome(desk: EmbeddedDesk, smtp: SmtpTestServer | None, sms_receiver: SmsReceiver | None,
            seeded: set[str], tx_mark: int) -> dict[str, Any]:
    """A side's end state in desk-independent names."""
    snap = read_desk(desk, tx_mark)
    names = canonical(snap, seeded)
    state: dict[str, dict[str, Any]] = {}
    copies: Counter[str] = Counter()
    for tid, t in snap["tickets"].items():
        name = names[tid]
        if name.startswith(("copy[", "new[")):
            copies[name] += 1
        cfs = {k: (("<set>",) if k in MOMENTS else v) for k, v in t["cf"].items()
               if k not in RUN_SPECIFIC}
        state.setdefault(name, {"Status": t["Status"], "Owner": t["Owner"],
                                "Queue": t["Queue"], **cfs})
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for tid, counts in snap["history"].items():
        if tid in names:
            history[names[tid]].update(counts)
    mails = mail_records(smtp, names) if smtp else []
    sms = [r.header("Idempotency-Key") or "" for r in sms_receiver.delivered] \
        if sms_receiver else []
    cats: dict[str, dict[str, int]] = {}
    tickets = snap["tickets"]
    for kind, _ in CATEGORIES:
        with_key = [t for t in tickets.values() if any(k.startswith(kind + ":")
                                                       for k in keys_of(t))]
        cats[kind] = {"tickets": len(with_key),
                      "mails": sum(1 for m in mails if m["key"].startswith(kind + ":"))}
    reopen_copies = [n for n in copies.elements() if n.startswith("copy[reopen:")]
    cats["reopen"]["copies"] = len(reopen_copies)
    cats["reopen"]["distinct copies"] = len(set(reopen_copies))
    closed_now = sum(1 for t in tickets.values() if t["Status"] == "closed")
    closes = sum(c.get("Status->closed", 0) for c in history.values())
    return {"state": state, "history": history, "copies": copies, "mails": mails,
            "sms": sms, "cats": cats, "closed": closed_now, "closes": closes,
            "tickets": len(tickets), "names": names}


def compare(case: dict[str, Any], control: dict[str, Any]) -> dict[str, list[str]]:
    """missing (control has, case lacks), doubled (case has more often), and the doubled
    mails that went out again under the same Message-ID, in words."""
    missing: list[str] = []
    doubled: list[str] = []
    same_id: list[str] = []
    differs: list[str] = []
    for name in sorted(set(control["state"]) | set(case["state"]), key=_order):
        want, have = control["state"].get(name), case["state"].get(name)
        if want is None:
            doubled.append(f"ticket {name}: only in the case ({have})")
            continue
        if have is None:
            missing.append(f"ticket {name}: only in the control ({want})")
            continue
        for fld in sorted(set(want) | set(have)):
            w, h = want.get(fld), have.get(fld)
            if w == h:
                continue
            if fld == "Automation Keys":
                lacks = sorted(set(w or ()) - set(h or ()))
                extra = sorted(set(h or ()) - set(w or ()))
                if lacks:
                    missing.append(f"ticket {name}: keys {lacks} not on the case desk")
                if extra:
                    doubled.append(f"ticket {name}: keys {extra} only on the case desk")
            else:
                differs.append(f"ticket {name}: {fld} {h!r} (case) != {w!r} (control)")
    for name in sorted(set(control["copies"]) | set(case["copies"]), key=_order):
        w, h = control["copies"].get(name, 0), case["copies"].get(name, 0)
        if h > w:
            doubled.append(f"{name}: {h} tickets for {w}")
    for name in sorted(set(control["history"]) | set(case["history"]), key=_order):
        w, h = control["history"].get(name, Counter()), case["history"].get(name, Counter())
        for kind in sorted(set(w) | set(h)):
            if h[kind] < w[kind]:
                missing.append(f"ticket {name}: {kind} x{h[kind]} of {w[kind]}")
            elif h[kind] > w[kind]:
                doubled.append(f"ticket {name}: {kind} x{h[kind]} for {w[kind]}")
    want_m = Counter((m["ticket"], m["key"], m["to"]) for m in control["mails"])
    have_m = Counter((m["ticket"], m["key"], m["to"]) for m in case["mails"])
    ids: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for m in case["mails"]:
        ids[(m["ticket"], m["key"], m["to"])].add(m["message_id"])
    for sig in sorted(set(want_m) | set(have_m)):
        w, h = want_m[sig], have_m[sig]
        text = f"mail (ticket {sig[0]}, {sig[1]}, to {sig[2]}): {h} for {w}"
        if h < w:
            missing.append(text)
        elif h > w:
            (same_id if w and len(ids[sig]) == 1 else doubled).append(
                text + (f", one Message-ID {next(iter(ids[sig]))}" if len(ids[sig]) == 1
                        else f", {len(ids[sig])} Message-IDs"))
    want_s, have_s = Counter(control["sms"]), Counter(case["sms"])
    for key in sorted(set(want_s) | set(have_s)):
        if have_s[key] < want_s[key]:
            missing.append(f"SMS {key}: {have_s[key]} of {want_s[key]}")
        elif have_s[key] > want_s[key]:
            same_id.append(f"SMS {key}: {have_s[key]} for {want_s[key]} (one Idempotency-Key)")
    # A field that differs is something the control has that the case lacks (or the case
    # has in its place): counted as missing, listed with both values.
    return {"missing": missing + differs, "doubled": doubled, "same_id": same_id}


def _order(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 40, name)


def db_mark(desk: EmbeddedDesk) -> int:
    with read_only(desk.db_path) as conn:
        return int(conn.execute("SELECT max(id) FROM Transactions").fetchone()[0] or 0)


def seed_with_progress(desk: EmbeddedDesk, count: int, seed: int, now: datetime) -> float:
    before = desk.ticket_count() or 0
    done = threading.Event()
    t0 = time.perf_counter()

    def progress() -> None:
        while not done.wait(30):
            n = (desk.ticket_count() or 0) - before
            say(f"  seeding {desk.workdir.name}: {n} of {count} tickets after "
                f"{time.perf_counter() - t0:.0f} s")

    watcher = threading.Thread(target=progress, daemon=True)
    watcher.start()
    try:
        result = seed_desk(desk, count=count, seed=seed, now=now, timeout_s=3600)
    finally:
        done.set()
    seconds = time.perf_counter() - t0
    say(f"  seeded {result.get('count')} tickets in {seconds:.0f} s "
        f"({result.get('tickets_per_s')} tickets/s), ids {result.get('first_id')}-"
        f"{result.get('last_id')}, {result.get('warnings')} loader warnings")
    return seconds


def copy_desk(src: EmbeddedDesk, dst: EmbeddedDesk) -> None:
    """The seeded database for a second desk, as the test harness copies its template: the
    SQLite file (and its WAL, if any) with the provisioning and seeding markers."""
    dst.workdir.mkdir(parents=True, exist_ok=True)
    for name in ("rt.db", "rt.db-wal", "rt.db-shm", "provisioned.json", "seeded.json",
                 "seed-ids.jsonl"):
        if (src.workdir / name).exists():
            shutil.copy2(src.workdir / name, dst.workdir / name)
