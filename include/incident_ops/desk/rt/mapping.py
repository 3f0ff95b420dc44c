"""Translating between RT's REST2 JSON and the canonical model, in both directions.

Reading never raises for a bad value: a value the vocabulary or the field type does not
know is kept as it is (a policy reports it by ticket and field), and a date that does not
parse becomes ``None`` with a note in ``Ticket.extra["warnings"]``. The raw custom-field
values travel along in ``Ticket.extra["rt_custom_fields"]`` so exact filters and
diagnostics can use what RT really holds.

RT gives dates in UTC as W3CDTF (``2026-01-31T08:00:00Z``) and "not set" as the epoch.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from incident_ops.desk.rt import schema
from incident_ops.desk.rt.ticketsql import utc_text
from incident_ops.model import CLOSED, NEW, RESOLVED, Ticket
from incident_ops.text import storable

NOBODY = "Nobody"
_TICKET_FIELDS = {f.name for f in dataclasses.fields(Ticket)}
_YES_NO = ("yes", "no")
# Core columns a change may carry in ``fields`` besides custom fields.
CORE_FIELDS = {"priority": "Priority", "subject": "Subject"}


def parse_rt_datetime(text: Any) -> datetime | None:
    """An aware UTC datetime from RT's W3CDTF / SQL forms; None when unset.

    Raises ``ValueError`` for text that is not a date (the caller records a warning).
    """
    if text is None:
        return None
    value = str(text).strip()
    if not value or value.lower() == "not set":
        return None
    iso = value.replace("Z", "+00:00")
    if len(iso) >= 19 and iso[10] == " ":
        iso = iso[:10] + "T" + iso[11:]
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # RT stores and sends UTC
    moment = moment.astimezone(UTC)
    if moment.year <= 1970 and moment.timestamp() <= 0:
        return None  # RT's "not set"
    return moment


def priority_code(value: Any, ranks: Mapping[str, int]) -> str:
    """The highest band whose rank <= the numeric priority; the lowest band below all."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return str(value)
    bands = sorted(ranks.items(), key=lambda item: item[1], reverse=True)
    for code, floor in bands:
        if number >= floor:
            return code
    return bands[-1][0] if bands else str(value)


def _user_name(ref: Any) -> str | None:
    if isinstance(ref, dict):
        name = ref.get("Name") or ref.get("id")
    else:
        name = ref
    if not name or name == NOBODY:
        return None
    return str(name)


def _user_email(ref: Any) -> str | None:
    if isinstance(ref, dict):
        email = ref.get("EmailAddress")
        if email:
            return str(email)
        ident = ref.get("id")
        return str(ident) if ident and "@" in str(ident) else None
    return str(ref) if ref and "@" in str(ref) else None


def custom_field_values(item: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{CF name: [values]}`` from either a search item or a ticket GET."""
    raw = item.get("CustomFields") or []
    out: dict[str, list[str]] = {}
    if isinstance(raw, dict):  # defensive: some RT versions key by id
        raw = list(raw.values())
    for cf in raw:
        if isinstance(cf, dict) and cf.get("name"):
            values = cf.get("values") or []
            out[str(cf["name"])] = [str(v) for v in values if v is not None and v != ""]
    return out


def parent_link(item: Mapping[str, Any]) -> str | None:
    """The MemberOf target (RT's "parent" hyperlink): a duplicate's master."""
    parents = _ticket_links(item, "parent")
    return parents[0] if parents else None


def child_links(item: Mapping[str, Any]) -> tuple[str, ...]:
    """The tickets that are MemberOf this one (RT's "child" hyperlinks): its duplicates."""
    return tuple(sorted(set(_ticket_links(item, "child")), key=int))


def _ticket_links(item: Mapping[str, Any], ref: str) -> list[str]:
    return [str(link.get("id")) for link in item.get("_hyperlinks") or []
            if isinstance(link, dict) and link.get("ref") == ref
            and link.get("type") == "ticket" and str(link.get("id")).isdigit()]


def ticket_from_rt(item: Mapping[str, Any], *, ranks: Mapping[str, int],
                   version: str | None, partial: bool = False,
                   with_duplicates: bool = False) -> Ticket:
    """``partial``: the item was read without its custom fields (see ``Ticket.partial``);
    ``with_duplicates``: its child links were read (``Ticket.duplicates``)."""
    item = storable(item)
    warnings: list[str] = []

    def when(label: str, text: Any) -> datetime | None:
        try:
            return parse_rt_datetime(text)
        except (TypeError, ValueError):
            warnings.append(f"{label}: cannot read date {text!r}")
            return None

    cfs = custom_field_values(item)
    values: dict[str, Any] = {}
    for cf in schema.CUSTOM_FIELDS:
        if cf.field not in _TICKET_FIELDS:
            continue
        got = cfs.get(cf.name, [])
        if cf.multiple:
            values[cf.field] = tuple(got)
        elif cf.type == "DateTime":
            values[cf.field] = when(cf.name, got[0]) if got else None
        elif cf.values == _YES_NO:
            first = got[0].strip().lower() if got else "no"
            if first not in _YES_NO:
                warnings.append(f"{cf.name}: unexpected value {got[0]!r}, read as 'no'")
            values[cf.field] = first == "yes"
        else:
            values[cf.field] = got[0] if got else None

    queue = item.get("Queue")
    queue_name = queue.get("Name") or queue.get("id") if isinstance(queue, dict) else queue
    owner = item.get("Owner")
    requestors = item.get("Requestor") or []
    if not isinstance(requestors, list):
        requestors = [requestors]
    status = str(item.get("Status") or "")
    created = when("Created", item.get("Created"))
    updated = when("LastUpdated", item.get("LastUpdated"))
    resolved = when("Resolved", item.get("Resolved"))
    extra: dict[str, Any] = {"rt_custom_fields": cfs, "rt_priority": item.get("Priority"),
                             "description_loaded": False}  # only get() reads it
    if warnings:
        extra["warnings"] = warnings

    return Ticket(
        id=str(item.get("id")),
        subject=str(item.get("Subject") or ""),
        status=status,
        priority=priority_code(item.get("Priority"), ranks),
        created=created or datetime.fromtimestamp(0, UTC),
        updated=updated or created or datetime.fromtimestamp(0, UTC),
        queue=str(queue_name or ""),
        requester=next((e for e in map(_user_email, requestors) if e), None),
        handler=_user_name(owner),
        handler_email=_user_email(owner) if _user_name(owner) else None,
        duplicate_of=parent_link(item),
        duplicates=child_links(item) if with_duplicates else None,
        # RT stamps Resolved on every move into an inactive status: for a resolved ticket it
        # is when it was resolved, for a closed one when it was closed. A closed ticket's
        # resolution time is in its history (``times_from_history``).
        resolved_at=resolved if status == RESOLVED else None,
        closed_at=resolved if status == CLOSED else None,
        version=version,
        partial=partial,
        extra=extra,
        **values,
    )


def times_from_history(ticket: Ticket, history: Sequence[Mapping[str, Any]],
                       nobody: str) -> Ticket:
    """``ticket`` with ``resolved_at``, ``closed_at`` and ``responded_at`` read from its
    status and owner transactions (oldest first; owner values are user ids, ``nobody``
    the id of RT's Nobody). The status moves needed are those out of ``new`` and into
    resolved or closed (``reads.history`` reads no others); more do no harm.

    - closed: closed when it last moved to closed; resolved when it last moved to resolved,
      if it went from there to closed, else (closed straight from an open status, e.g. a
      duplicate closed with its master) at its close;
    - resolved: when it last moved to resolved;
    - responded: when it first had an owner or left ``new``; its creation if it was created
      with an owner or in another status (a reopened copy is created assigned).
    """
    moves: list[tuple[datetime, str, str]] = []
    owners: list[tuple[datetime, str, str]] = []
    for txn in history:
        try:
            moment = parse_rt_datetime(txn.get("Created"))
        except (TypeError, ValueError):
            moment = None
        if moment is None:
            continue
        change = (moment, str(txn.get("OldValue") or ""), str(txn.get("NewValue") or ""))
        if txn.get("Field") == "Status":
            moves.append(change)
        elif txn.get("Field") == "Owner":
            owners.append(change)

    def assigned(user_id: str) -> bool:
        return user_id not in ("", "0", nobody)

    created_status = moves[0][1] if moves else ticket.status
    created_owned = assigned(owners[0][1]) if owners else ticket.handler is not None
    if created_status != NEW or created_owned:
        responded: datetime | None = ticket.created
    else:
        firsts = [w for w, old, _ in moves if old == NEW][:1] + \
            [w for w, _, new in owners if assigned(new)][:1]
        responded = min(firsts) if firsts else None
    resolved_at, closed_at = ticket.resolved_at, ticket.closed_at
    into_resolved = [w for w, _, new in moves if new == RESOLVED]
    if ticket.status == CLOSED:
        close = next((m for m in reversed(moves) if m[2] == CLOSED), None)
        if close is not None:
            closed_at = close[0]
        came_from_resolved = close is not None and close[1] == RESOLVED and bool(into_resolved)
        resolved_at = into_resolved[-1] if came_from_resolved else closed_at
    elif ticket.status == RESOLVED and into_resolved:
        resolved_at = into_resolved[-1]
    return ticket.with_changes(resolved_at=resolved_at, closed_at=closed_at,
                               responded_at=responded)


# -- writing ----------------------------------------------------------------------------


class UnknownField(KeyError):
    """A canonical field name the RT schema has no place for."""


def cf_value(cf: schema.CustomField, value: Any) -> Any:
    """A canonical value as RT wants it for custom field ``cf`` (None clears it)."""
    if value is None:
        return [] if cf.multiple else None
    if cf.multiple:
        items = [value] if isinstance(value, str | bytes) else list(value)
        return [_scalar(v) for v in items]
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return utc_text(value if value.tzinfo else value.replace(tzinfo=UTC))
    return str(value)


def write_payload(fields: Mapping[str, Any], ranks: Mapping[str, int]) -> dict[str, Any]:
    """REST2 body parts (core columns and ``CustomFields``) for canonical ``fields``."""
    body: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "priority":
            body["Priority"] = ranks[value] if value in ranks else value
        elif name in CORE_FIELDS:
            body[CORE_FIELDS[name]] = value
        elif name in schema.BY_FIELD:
            cf = schema.BY_FIELD[name]
            custom[cf.name] = cf_value(cf, value)
        else:
            raise UnknownField(name)
    if custom:
        body["CustomFields"] = custom
    return body


def holds(ticket_cfs: Mapping[str, Sequence[str]], cf_name: str, wanted: Any) -> bool:
    """Does RT hold ``wanted`` (as sent) in custom field ``cf_name``?"""
    have = list(ticket_cfs.get(cf_name, []))
    cf = schema.BY_NAME.get(cf_name)
    if wanted is None or wanted == []:
        return not have
    want = wanted if isinstance(wanted, list) else [wanted]
    if cf is not None and cf.type == "DateTime":
        try:
            return [parse_rt_datetime(h) for h in have] == [
                parse_rt_datetime(w) for w in want]
        except ValueError:
            return False
    return sorted(have) == sorted(str(w) for w in want)


def item_holds(item: Mapping[str, Any] | None, body: Mapping[str, Any]) -> bool:
    """Does the ticket as RT returned it already carry everything ``body`` writes?

    Tells "our write landed, only its answer was lost" from "it did not land".
    """
    if item is None:
        return False
    for key, wanted in body.items():
        if key == "CustomFields":
            cfs = custom_field_values(item)
            if not all(holds(cfs, name, value) for name, value in wanted.items()):
                return False
        elif key == "Owner":
            if (_user_name(item.get("Owner")) or NOBODY) != wanted:
                return False
        elif str(item.get(key)) != str(wanted):
            return False
    return True


# -- reading RT's answer to a write -------------------------------------------------------
# RT answers a write with HTTP 200 and a list of human-readable messages, one per thing it
# did or refused, and applies the rest of the request even when one part is refused. A
# message is a success when it has one of the shapes below; otherwise it is a refusal when
# it reads like one. Checking success shapes first keeps a value such as "can't reproduce"
# inside "Close Code can't reproduce added" from looking like an error.

_CORE_SUCCESS = re.compile(
    r"^(?:Ticket \d+: )?(?:[A-Z][\w ]*) changed from .* to .*$"
    r"|^Ticket \d+: The new value has been set\.?$"
    r"|^(?:Comments added|Correspondence added|Message recorded|Custom fields updated)$"
    r"|^Ticket \d+ [^:]* Ticket \d+\.?$",  # link added / removed
    re.S)
_FAILURE = re.compile(
    r"(?i)invalid|isn't a valid|can't|cannot|could ?not|couldn't|not found|does ?n[o']t exist"
    r"|denied|illegal|unable|refused|failed|no permission|not allowed|is a required|must ")


def _cf_success(message: str, cf_names: Sequence[str]) -> str | None:
    for name in cf_names:
        if message.startswith(name + " ") and (
                message.endswith(" added") or message.endswith(" deleted")
                or " changed to " in message):
            return name
        if message.endswith(" added as a value for " + name) or message.endswith(
                " is no longer a value for custom field " + name):
            return name
    return None


def rejections(messages: Sequence[Any], body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(canonical field, RT message)`` for each part of ``body`` RT refused."""
    custom = dict(body.get("CustomFields") or {})
    names = sorted(custom, key=len, reverse=True)  # "Escalation Due" before "Escalation"
    confirmed: set[str] = set()
    refused: list[str] = []
    for raw in messages:
        message = str(raw)
        cf = _cf_success(message, names)
        if cf is not None:
            confirmed.add(cf)
        elif _CORE_SUCCESS.match(message):
            continue
        elif _FAILURE.search(message):
            refused.append(message)
    return [(_field_of(m, body, custom, confirmed), m) for m in refused]


def _canonical(cf_name: str) -> str:
    cf = schema.BY_NAME.get(cf_name)
    return cf.field if cf else cf_name


def _field_of(message: str, body: Mapping[str, Any], custom: Mapping[str, Any],
              confirmed: set[str]) -> str:
    lower = message.lower()
    if "status" in lower:
        return "status"
    for name in sorted(custom, key=len, reverse=True):
        if name in message:
            return _canonical(name)
    if "custom field" in lower or "not a valid value" in lower:
        # RT's "Invalid value for custom field" names no field: it is one of those sent
        # that RT did not confirm, and only Select fields refuse values.
        open_ = [n for n in custom if n not in confirmed]
        select = [n for n in open_ if (schema.BY_NAME.get(n) or _FREE).type == "Select"]
        pick = select or open_
        if pick:
            return ",".join(_canonical(n) for n in sorted(pick))
    if "link" in lower or "member" in lower:
        return "duplicate_of"
    if "Owner" in body and ("user" in lower or "owner" in lower):
        return "owner"
    for column, canonical in (("Owner", "owner"), ("Priority", "priority"),
                              ("Subject", "subject")):
        if column in body:
            return canonical
    return "?"


_FREE = schema.CustomField("", "", "Freeform")
