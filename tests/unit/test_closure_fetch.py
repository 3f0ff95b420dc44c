"""The closure pipeline's fetch on the in-memory desk: what it reads, how light, which roots.

It must hand the policy every family whole (masters above, duplicates below, any depth),
read duplicates without their record (they close on their master's) and read in full any
ticket the policy will judge on its own record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from incident_ops.desk.memory import MemoryDesk
from incident_ops.model import CLOSED, RESOLVED, Ticket
from incident_ops.pipelines.resolved import fetch_closure_batch

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def desk() -> MemoryDesk:
    return MemoryDesk(clock=lambda: T0)


def add(desk: MemoryDesk, status: str = RESOLVED, **over: Any) -> str:
    base: dict[str, Any] = dict(id="", subject="t", status=status, priority="high",
                                created=T0 - timedelta(hours=2), updated=T0,
                                close_code="solved", source="monitoring")
    base.update(over)
    return desk.add(Ticket(**base)).id


def test_a_family_comes_whole_masters_in_full_duplicates_light(desk: MemoryDesk) -> None:
    master = add(desk)
    dup = add(desk, duplicate_of=master)
    open_dup = add(desk, status="new", duplicate_of=master)
    grand = add(desk, status="new", duplicate_of=open_dup)
    batch = fetch_closure_batch(desk, None)
    tickets = batch.tickets
    assert set(tickets) == {master, dup, open_dup, grand}
    assert not tickets[master].partial and tickets[master].close_code == "solved"
    assert tickets[dup].partial and tickets[open_dup].partial and tickets[grand].partial
    assert tickets[grand].duplicate_of == open_dup


def test_the_master_of_a_resolved_duplicate_is_read_in_full(desk: MemoryDesk) -> None:
    master = add(desk, status="in-progress")
    dup = add(desk, duplicate_of=master)
    batch = fetch_closure_batch(desk, None)
    assert [t.id for t in batch.resolved] == [dup]
    (related,) = batch.related
    assert related.id == master and not related.partial


def test_only_what_changed_since_the_watermark_is_read() -> None:
    now = [T0 - timedelta(days=2)]
    desk = MemoryDesk(clock=lambda: now[0])
    add(desk)  # last changed two days ago
    now[0] = T0
    new = add(desk)
    batch = fetch_closure_batch(desk, T0 - timedelta(hours=1))
    assert [t.id for t in batch.resolved] == [new]


def test_open_duplicates_of_a_master_closed_since_are_read(desk: MemoryDesk) -> None:
    master = add(desk, status=CLOSED)
    open_dup = add(desk, status="new", duplicate_of=master)
    batch = fetch_closure_batch(desk, T0 - timedelta(hours=1))
    assert {t.id for t in batch.related} == {master, open_dup}
    # Should its close not happen now, the next run starts from the master's update.
    assert batch.read_times()[open_dup] == desk.ticket(master).updated


def test_a_duplicate_in_a_cycle_is_read_in_full_once_it_turns_out_a_root(desk: MemoryDesk
                                                                          ) -> None:
    a = add(desk)
    b = add(desk, duplicate_of=a)
    desk.edit(a, duplicate_of=b)  # a desk that allows loops (RT refuses them)
    batch = fetch_closure_batch(desk, None)
    assert {t.id: t.partial for t in batch.resolved} == {a: False, b: True}


def test_a_resolved_duplicate_of_a_master_closed_since_gets_the_master_in_full(
        desk: MemoryDesk) -> None:
    master = add(desk, status=CLOSED, close_code="workaround")
    dup = add(desk, duplicate_of=master)
    batch = fetch_closure_batch(desk, T0 - timedelta(hours=1))
    assert [t.id for t in batch.resolved] == [dup]
    (m,) = batch.related
    assert m.id == master and not m.partial and m.close_code == "workaround"


def test_a_family_closed_whole_is_not_read_again(desk: MemoryDesk) -> None:
    master = add(desk, status=CLOSED)
    add(desk, status=CLOSED, duplicate_of=master)
    batch = fetch_closure_batch(desk, T0 - timedelta(hours=1))
    assert batch.resolved == [] and batch.related == []


def test_the_first_run_does_not_go_through_every_closed_family(desk: MemoryDesk) -> None:
    master = add(desk, status=CLOSED)
    add(desk, status="new", duplicate_of=master)
    assert fetch_closure_batch(desk, None).related == []
