"""Duplicate families: which ticket is a duplicate of which, safely.

Each ticket names at most one master (``duplicate_of``), so the links form a forest, unless
someone linked a ticket to itself or made a cycle. Self-links and cycles are reported as
findings and broken at one deterministic edge (the cycle's lowest ticket id loses its
master link), so nothing is ever followed forever and every family has one root.

Breaking a link changes the tickets at both of its ends in the desk (RT records the removal
on both), so an action planned on either of them from the version read before the break
would find it "changed since read" and wait for the next run. ``relinked`` names those
tickets: the closure plan writes them without the version check, in the same run (their
break is unconditional too, and a ticket in a loop is a repair, not a person's edit).
"""

from __future__ import annotations

from collections.abc import Iterable

from incident_ops.model import Ticket, id_order
from incident_ops.policy import rules
from incident_ops.policy.plan import BREAK_LINK, Action, Finding, action_key


class DuplicateGraph:
    def __init__(self, tickets: Iterable[Ticket]):
        self.tickets: dict[str, Ticket] = {}
        for ticket in tickets:
            self.tickets.setdefault(ticket.id, ticket)
        self.findings: list[Finding] = []
        self._broken: dict[str, str] = {}  # ticket id -> master link removed
        self._parent: dict[str, str] = {}
        for ticket in sorted(self.tickets.values(), key=lambda t: id_order(t.id)):
            if ticket.duplicate_of == ticket.id:
                self.findings.append(Finding(ticket.id, "duplicate_of",
                                             "ticket is linked as a duplicate of itself; "
                                             "the link is removed"))
                self._broken[ticket.id] = ticket.id
            elif ticket.duplicate_of:
                self._parent[ticket.id] = ticket.duplicate_of
        self._break_cycles()
        self._children: dict[str, list[str]] = {}
        for child, parent in sorted(self._parent.items(), key=lambda kv: id_order(kv[0])):
            self._children.setdefault(parent, []).append(child)

    def _break_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for start in sorted(self._parent, key=id_order):
            path: list[str] = []
            node: str | None = start
            while node is not None and state.get(node) is None:
                state[node] = 1
                path.append(node)
                node = self._parent.get(node)
            if node is not None and state.get(node) == 1:  # walked back onto our own path
                cycle = path[path.index(node):]
                breaker = min(cycle, key=id_order)
                self.findings.append(Finding(
                    breaker, "duplicate_of",
                    "duplicate cycle " + " -> ".join(f"#{t}" for t in [*cycle, cycle[0]])
                    + f"; the link #{breaker} -> #{self._parent[breaker]} is removed"))
                self._broken[breaker] = self._parent.pop(breaker)
            for visited in path:
                state[visited] = 2

    def master_of(self, ticket_id: str) -> str | None:
        """The direct master after breaking cycles (None for a root)."""
        return self._parent.get(ticket_id)

    def root_of(self, ticket_id: str) -> str:
        node = ticket_id
        while node in self._parent:  # acyclic after _break_cycles
            node = self._parent[node]
        return node

    def descendants(self, ticket_id: str) -> list[Ticket]:
        """Every known duplicate below ``ticket_id``, breadth first, each once."""
        found: list[Ticket] = []
        queue = list(self._children.get(ticket_id, ()))
        while queue:
            child = queue.pop(0)
            if child in self.tickets:
                found.append(self.tickets[child])
            queue.extend(self._children.get(child, ()))
        return found

    def relinked(self) -> set[str]:
        """Ids of the tickets whose links ``break_actions`` change: both ends of each break."""
        return {end for tid, master in self._broken.items() for end in (tid, master)}

    def break_actions(self) -> list[Action]:
        actions = []
        for ticket_id, master in sorted(self._broken.items(), key=lambda kv: id_order(kv[0])):
            actions.append(Action(
                kind=BREAK_LINK, ticket_id=ticket_id, step="100.7.1", rule=rules.DUPLICATES_CYCLE,
                reason=f"duplicate link to #{master} would loop; removed",
                # No version check: removing a looping link is right whatever else changed.
                key=action_key("unlink", ticket_id, master), unlink_from=master,
                comment=(f"自动化检测到重复单循环引用，已移除与 #{master} 的重复关联。\n"
                         f"Automation found a duplicate loop and removed the link to #{master}.")))
        return actions
