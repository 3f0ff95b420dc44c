"""TicketSQL built from a TicketQuery: values stay data, identifiers come from the schema.

The literal round-trip is checked against RT's own parser (RT::SQL from the installed RT,
run through ``tests/support/rt_sql.py``); the search against a live RT is in
``tests/integration/test_rt_adapter.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_ops.desk.port import BadQuery, TicketQuery
from incident_ops.desk.rt import ticketsql
from tests.support import rt_sql

RANKS = {"urgent": 90, "high": 70, "medium": 50, "low": 10}
INJECTION = "x' OR id>0 OR 'a'='a"
TRICKY = [INJECTION, "it's", "back\\slash", "\\'", "'", "\\", "中文 事件 '引号'", "a\nb",
          "(", ") OR (", '"double"', "%_", "", "AND", "NULL", "CF.{Source}", "cf.x"]


@pytest.fixture(scope="module")
def rt_parser() -> Iterator[rt_sql.RTSqlParser]:
    if not rt_sql.available():
        pytest.skip("RT 5 is not installed here: no RT::SQL to check against")
    parser = rt_sql.RTSqlParser()
    yield parser
    parser.close()


def conditions(parser: rt_sql.RTSqlParser, sql: str) -> list[dict[str, object]]:
    parsed = parser.parse(sql)
    assert parsed["error"] is None, parsed["error"]
    return parsed["conditions"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("value", TRICKY)
def test_a_quoted_value_is_one_literal_to_rt(rt_parser: rt_sql.RTSqlParser, value: str) -> None:
    sql = f"Subject = {ticketsql.quote(value)} AND id > 0"
    conds = conditions(rt_parser, sql)
    if ticketsql.is_literal_safe(value):
        assert conds[0] == {"key": "Subject", "op": "=", "value": value, "quoted": 1}
    assert [c["key"] for c in conds] == ["Subject", "id"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_string_round_trips_as_a_literal(rt_parser: rt_sql.RTSqlParser, value: str) -> None:
    conds = conditions(rt_parser, f"Subject = {ticketsql.quote(value)} AND id > 0")
    assert len(conds) == 2 and conds[1]["key"] == "id"
    if ticketsql.is_literal_safe(value):
        assert conds[0]["value"] == value and conds[0]["quoted"] == 1


def test_an_injection_attempt_is_data() -> None:
    sql = ticketsql.build(TicketQuery(fields={"config_item": INJECTION}), RANKS)
    assert sql == "Queue = 'Incidents' AND CF.{Configuration Item} = 'x\\' OR id>0 OR \\'a\\'=\\'a'"


def test_a_value_rt_would_read_as_a_field_is_searched_widely_and_never_as_a_field(
        rt_parser: rt_sql.RTSqlParser) -> None:
    clause = ticketsql.equals("CF.{Close Code}", "CF.{Source}")
    assert clause == "CF.{Close Code} LIKE 'F.{Source}'"
    assert conditions(rt_parser, clause)[0]["quoted"] == 1


def test_custom_field_names_come_from_the_schema_only() -> None:
    assert ticketsql.cf_ref("close_code") == "CF.{Close Code}"
    with pytest.raises(BadQuery):
        ticketsql.cf_ref("Close Code} OR id > 0 OR CF.{x")
    with pytest.raises(BadQuery):
        ticketsql.build(TicketQuery(fields={"no_such_field": "x"}), RANKS)


def test_ids_must_be_numbers() -> None:
    with pytest.raises(BadQuery):
        ticketsql.build(TicketQuery(ids=["1 OR id > 0"]), RANKS)
    assert ticketsql.build(TicketQuery(queue=None, ids=["3", "12"]), RANKS) == "(id = 3 OR id = 12)"


def test_datetimes_are_utc_seconds_and_must_be_aware() -> None:
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2026, 3, 1, 8, 30, 15, 999, tzinfo=beijing)
    assert ticketsql.date_literal(moment) == "'2026-03-01 00:30:15'"
    with pytest.raises(BadQuery):
        ticketsql.date_literal(datetime(2026, 3, 1))


def test_a_full_query_reads_like_its_criteria(rt_parser: rt_sql.RTSqlParser) -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    query = TicketQuery(
        statuses=["resolved"], sources=["monitoring", "auto-transfer"], priorities=["urgent"],
        updated_since=since, open_only=False, fields={"close_code": "solved"},
        field_is_set=["completed_at"], field_unset=["confirmation"],
        field_before={"escalation_due": since}, member_of=["7", "9"])
    sql = ticketsql.build(query, RANKS)
    assert sql == (
        "Queue = 'Incidents' AND Status = 'resolved'"
        " AND (CF.{Source} = 'monitoring' OR CF.{Source} = 'auto-transfer')"
        " AND ((Priority >= 90)) AND LastUpdated >= '2026-01-02 03:04:05'"
        " AND CF.{Close Code} = 'solved' AND CF.{Completed At} IS NOT NULL"
        " AND CF.{Confirmation} IS NULL"
        " AND CF.{Escalation Due} < '2026-01-02 03:04:05'"
        " AND CF.{Escalation Due} > '1970-01-02 00:00:00' AND (MemberOf = 7 OR MemberOf = 9)")
    assert len(conditions(rt_parser, sql)) == 13


def test_priority_bands_follow_the_vocabulary_ranks() -> None:
    assert ticketsql.priority_clause(["high"], RANKS) == "((Priority >= 70 AND Priority < 90))"
    # the lowest band also holds everything below its rank, like priority_for_rank
    assert ticketsql.priority_clause(["low"], RANKS) == "((Priority < 50))"


def test_keyset_paging_continues_after_the_last_ticket_seen() -> None:
    last = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ticketsql.after_keyset("Status = 'new'", last, "42") == (
        "(Status = 'new') AND (LastUpdated >= '2026-01-02 03:04:06' OR "
        "(LastUpdated >= '2026-01-02 03:04:05' AND LastUpdated < '2026-01-02 03:04:06' "
        "AND id > 42))")


def test_duplicate_criteria_and_the_join_limit(rt_parser: rt_sql.RTSqlParser) -> None:
    sql = ticketsql.build(TicketQuery(queue=None, ids=["3", "4"], has_duplicates=True), RANKS)
    assert sql == "(id = 3 OR id = 4) AND HasMember IS NOT NULL"
    assert len(conditions(rt_parser, sql)) == 3
    assert ticketsql.build(TicketQuery(queue=None, has_duplicates=False), RANKS) == \
        "HasMember IS NULL"
    fifty = [str(i) for i in range(1, 51)]
    assert ticketsql.build(TicketQuery(queue=None, member_of=fifty), RANKS).count("MemberOf") == 50
    with pytest.raises(BadQuery, match="member_of"):  # RT would answer an empty page
        ticketsql.build(TicketQuery(queue=None, member_of=[*fifty, "51"]), RANKS)
