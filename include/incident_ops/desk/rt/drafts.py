"""A new ticket's REST2 body (``RequestTrackerDesk.create``), refused before it is sent when
RT would silently drop part of it (a field of another queue, a Select value it does not have).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from incident_ops.desk.port import RejectedChange
from incident_ops.desk.rt import mapping, schema, ticketsql
from incident_ops.desk.rt.client import RTClient
from incident_ops.desk.rt.reads import MAX_PER_PAGE
from incident_ops.model import TicketDraft

SELECT_CACHE_SECONDS = 600.0
_SELECT_CACHE: dict[str, dict[str, tuple[float, set[str]]]] = {}  # api -> name -> (expiry, values)
_FREE = schema.CustomField("", "", "Freeform")


def create_body(client: RTClient, draft: TicketDraft, ranks: Mapping[str, int]) -> dict[str, Any]:
    fields = dict(draft.fields)
    fields["idempotency_key"] = draft.idempotency_key
    if draft.priority is not None:
        fields["priority"] = draft.priority
    for name in fields:
        cf = schema.BY_FIELD.get(name)
        if cf is not None and draft.queue not in cf.queues:
            raise RejectedChange(f"new ticket in {draft.queue}: field {name} does not "
                                 f"apply to that queue", field=name)
    try:
        body = mapping.write_payload(fields, ranks)
    except mapping.UnknownField as exc:
        raise RejectedChange(f"new ticket: no RT field for {exc.args[0]!r}",
                             field=str(exc.args[0])) from None
    check_select_values(client, body.get("CustomFields") or {})
    body.update(Queue=draft.queue, Subject=draft.subject, Content=draft.description,
                ContentType="text/plain")
    if draft.status:
        body["Status"] = draft.status
    if draft.owner:
        body["Owner"] = draft.owner
    if draft.requester:
        body["Requestor"] = draft.requester
    if draft.refers_to:
        body["RefersTo"] = [int(ticketsql.ticket_id(t)) for t in draft.refers_to]
    return body


def check_select_values(client: RTClient, custom: Mapping[str, Any]) -> None:
    """RT drops a bad Select value on create without a word; refuse it before creating."""
    selects = [n for n in custom if (schema.BY_NAME.get(n) or _FREE).type == "Select"]
    if not selects:
        return
    allowed = desk_select_values(client, selects)
    for name in selects:
        values = custom[name] if isinstance(custom[name], list) else [custom[name]]
        for value in values:
            if value is not None and name in allowed and \
                    str(value).lower() not in allowed[name]:
                raise RejectedChange(f"new ticket: {value!r} is not a value of {name}",
                                     field=schema.BY_NAME[name].field)


def desk_select_values(client: RTClient, names: Sequence[str]) -> dict[str, set[str]]:
    """The values the desk allows per Select field (RT matches them case-insensitively).

    Cached per desk URL for a few minutes across adapter instances: each Airflow task
    builds its own adapter, and the value lists change only when the desk is
    re-provisioned.
    """
    now = time.monotonic()
    cache = _SELECT_CACHE.setdefault(client.api, {})
    wanted = [n for n in names if n not in cache or cache[n][0] < now]
    if wanted:
        listing = client.json("GET", "/customfields", params={
            "query": '[{"field":"Type","value":"Select"}]', "per_page": MAX_PER_PAGE,
            "fields": "Name"})
        for item in listing.get("items") or []:
            if item.get("Name") in wanted:
                cf = client.json("GET", f"/customfield/{int(item['id'])}")
                cache[str(item["Name"])] = (now + SELECT_CACHE_SECONDS,
                                            {str(v).lower() for v in cf.get("Values") or []})
    return {n: cache[n][1] for n in names if n in cache}
