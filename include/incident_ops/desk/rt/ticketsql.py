"""Building TicketSQL from a ``TicketQuery`` without letting data become query.

RT parses TicketSQL with ``RT::SQL::Parse`` (lib/RT/SQL.pm): a value is a single- or
double-quoted string in which a backslash escapes the next character, and the parser
unescapes with ``s/\\(.)/$1/g``. So a value is safe as ``'`` + value with ``\\`` doubled and
``'`` escaped + ``'``: whatever it contains (quotes, ``OR id>0``, parentheses, Chinese) stays
one literal. Identifiers never come from input: custom-field names come from ``schema.py``,
columns are constants here.

One trap the escaping cannot avoid: after unquoting, RT turns a value that *looks like*
``CF.something`` back into a custom-field reference (SQL.pm, "to DWIM"). Such a value cannot
be written as a literal at all, so it is searched with a wider ``LIKE`` on the rest of the
value, and the adapter keeps only exact matches. The adapter re-checks equality criteria on
the tickets in any case, because RT compares strings case-insensitively on some databases.

Dates are sent as ``'YYYY-MM-DD HH:MM:SS'`` in UTC. RT reads them in the API user's time
zone, so the desk user (or RT's ``$Timezone``) must be UTC; the embedded desk is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from incident_ops.desk.port import BadQuery, TicketQuery
from incident_ops.desk.rt import schema
from incident_ops.model import Ticket

# RT's parser converts a quoted value matching ^CF\.(...)$ (case-insensitive) into a column
# reference; anything starting with "CF." is treated as unsafe (a superset, on purpose).
_CF_LOOKALIKE = re.compile(r"(?i)^cf\.")
# A custom-field name is spliced into ``CF.{...}``; RT's keyword regex stops at the first
# "}", and quotes/newlines would end the token early.
_SAFE_CF_NAME = re.compile(r"^[^{}'\"\\\n\r]+$")
_ID = re.compile(r"^[1-9][0-9]*$")


def quote(value: str) -> str:
    """``value`` as a single-quoted TicketSQL literal that RT unquotes back to ``value``."""
    if not isinstance(value, str):
        raise BadQuery(f"TicketSQL value must be a string, got {type(value).__name__}")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_literal_safe(value: str) -> bool:
    """False for values RT would read as a custom-field reference even when quoted."""
    return not _CF_LOOKALIKE.match(value)


MAX_LINK_CLAUSES = 50  # MemberOf clauses per query (each one is a join: see ``build``)
NOT_SET_CEILING = "1970-01-02 00:00:00"  # RT's "Not set" date is 1970-01-01 00:00:00


def utc_text(moment: datetime) -> str:
    """An aware datetime as RT's 'YYYY-MM-DD HH:MM:SS' in UTC (RT stores whole seconds)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadQuery(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def date_literal(moment: datetime) -> str:
    return quote(utc_text(moment))


def cf_ref(canonical_field: str) -> str:
    """``CF.{Name}`` for a canonical field; the name comes from the schema, never from input."""
    cf = schema.BY_FIELD.get(canonical_field)
    if cf is None:
        raise BadQuery(f"field {canonical_field!r} is not a custom field of the RT schema",
                       field=canonical_field)
    if not _SAFE_CF_NAME.match(cf.name):
        raise BadQuery(f"schema custom-field name {cf.name!r} cannot be used in TicketSQL",
                       field=canonical_field)
    return "CF.{" + cf.name + "}"


def ticket_id(value: str | int) -> str:
    text = str(value).strip()
    if not _ID.match(text):
        raise BadQuery(f"ticket id {value!r} is not a positive integer", ticket_id=str(value))
    return text


def equals(column: str, value: str) -> str:
    """``column = 'value'``; for a CF look-alike value, a wider LIKE (callers filter exactly)."""
    if is_literal_safe(value):
        return f"{column} = {quote(value)}"
    # Drop the leading "C": the rest is safe and RT's LIKE matches it as a substring.
    return f"{column} LIKE {quote(value[1:])}"


def any_of(column: str, values: Iterable[str]) -> str:
    parts = [equals(column, v) for v in values]
    if not parts:
        raise BadQuery(f"empty value list for {column}")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def all_of(clauses: Sequence[str]) -> str:
    # Every multi-part clause built here is already parenthesized, so AND is safe.
    return " AND ".join(clauses)


def priority_clause(codes: Sequence[str], ranks: Mapping[str, int]) -> str:
    """Numeric bands for priority codes: a code covers [its rank, the next rank up).

    The lowest band also covers everything below it, matching ``priority_for_rank``.
    """
    bands = sorted(ranks.items(), key=lambda item: item[1])
    parts: list[str] = []
    for code in codes:
        if code not in ranks:
            raise BadQuery(f"unknown priority code {code!r}", field="priority")
        idx = next(i for i, (c, _) in enumerate(bands) if c == code)
        low = None if idx == 0 else bands[idx][1]
        high = bands[idx + 1][1] if idx + 1 < len(bands) else None
        conds = ([f"Priority >= {low}"] if low is not None else []) + (
            [f"Priority < {high}"] if high is not None else [])
        parts.append(" AND ".join(conds) if conds else "id > 0")
    return "(" + " OR ".join(f"({p})" for p in parts) + ")"


def build(query: TicketQuery, priority_ranks: Mapping[str, int]) -> str:
    """The TicketSQL for ``query`` (every criterion ANDed)."""
    clauses: list[str] = []
    if query.queue:
        clauses.append(equals("Queue", query.queue))
    if query.ids:
        clauses.append(any_of_ids(query.ids))
    if query.open_only:
        clauses.append("Status = '__Active__'")
    if query.statuses:
        clauses.append(any_of("Status", query.statuses))
    if query.sources:
        clauses.append(any_of(cf_ref("source"), query.sources))
    if query.priorities:
        clauses.append(priority_clause(query.priorities, priority_ranks))
    if query.updated_since is not None:
        clauses.append(f"LastUpdated >= {date_literal(query.updated_since)}")
    if query.created_since is not None:
        clauses.append(f"Created >= {date_literal(query.created_since)}")
    if query.created_before is not None:
        clauses.append(f"Created < {date_literal(query.created_before)}")
    for name, value in sorted(query.fields.items()):
        clauses.append(equals(cf_ref(name), value))
    for name in sorted(query.field_is_set):
        clauses.append(f"{cf_ref(name)} IS NOT NULL")
    for name in sorted(query.field_unset):
        clauses.append(f"{cf_ref(name)} IS NULL")
    for name, moment in sorted(query.field_before.items()):
        # RT keeps a cleared date as "Not set" (the epoch), which is "before" everything:
        # the lower bound keeps cleared fields out of due-time searches.
        clauses.append(f"{cf_ref(name)} < {date_literal(moment)}")
        clauses.append(f"{cf_ref(name)} > {quote(NOT_SET_CEILING)}")
    if query.member_of:
        if len(set(query.member_of)) > MAX_LINK_CLAUSES:
            # Each MemberOf clause is a join; past SQLite's 64-table join limit RT answers
            # an empty result instead of an error, which would read as "no duplicates".
            raise BadQuery(f"member_of: at most {MAX_LINK_CLAUSES} masters per search, got "
                           f"{len(set(query.member_of))}", field="member_of")
        clauses.append(any_of_numbers("MemberOf", (ticket_id(m) for m in query.member_of)))
    if query.has_duplicates is not None:
        clauses.append(f"HasMember IS {'NOT ' if query.has_duplicates else ''}NULL")
    return all_of(clauses) if clauses else "id > 0"


def any_of_ids(ids: Iterable[str | int]) -> str:
    return any_of_numbers("id", (ticket_id(i) for i in ids))


def any_of_numbers(column: str, numbers: Iterable[str]) -> str:
    parts = [f"{column} = {n}" for n in numbers]
    if not parts:
        raise BadQuery(f"empty value list for {column}")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def after_keyset(sql: str, last_updated: datetime, last_id: str) -> str:
    """``sql`` restricted to tickets after (LastUpdated, id) in the search order.

    Keyset paging instead of page numbers: a ticket edited while we page moves to the end of
    the order, which would shift an offset and skip an unseen ticket. RT's ``LastUpdated =``
    means "same day", so the same second is written as a half-open range.
    """
    second = last_updated.astimezone(UTC).replace(microsecond=0)
    nxt = second + timedelta(seconds=1)
    keyset = (f"(LastUpdated >= {date_literal(nxt)} OR (LastUpdated >= {date_literal(second)}"
              f" AND LastUpdated < {date_literal(nxt)} AND id > {ticket_id(last_id)}))")
    return f"({sql}) AND {keyset}"


def matches(ticket: Ticket, query: TicketQuery) -> bool:
    """Exact re-check of equality criteria (RT may compare case-insensitively or widely)."""
    if query.queue and ticket.queue != query.queue:
        return False
    if query.statuses and ticket.status not in query.statuses:
        return False
    if query.sources and ticket.source not in query.sources:
        return False
    cfs = ticket.extra.get("rt_custom_fields", {})
    for name, value in query.fields.items():
        if value not in cfs.get(schema.BY_FIELD[name].name, []):
            return False
    return True
