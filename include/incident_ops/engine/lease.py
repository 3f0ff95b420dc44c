"""Holding a desk lease while applying: one apply per scope at a time, however runs overlap.

The desk keeps the lease (``ServiceDesk.claim_lease``: a log the desk orders, see
``desk/lease_log.py``); this is the holder's side: claim it (waiting while another run holds
it), renew it before it can run out, notice when it was lost, give it back.

Renewal uses the local monotonic clock: a holder that renewed less than ``ttl / 3`` ago
cannot have lost the lease (nobody may take it before ``ttl`` has passed by the desk's
clock), so checking before each unit of work costs nothing most of the time. A holder that
could not renew for most of its ``ttl`` (a desk outage, a frozen process) stops acting: its
lease may be someone else's by now.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from incident_ops.desk.lease_log import clean
from incident_ops.desk.port import LeaseState, ServiceDesk

log = logging.getLogger(__name__)

DEFAULT_TTL = 120.0


class LeaseBusy(Exception):
    """Another run held the lease for all of our wait."""

    def __init__(self, state: LeaseState, waited: float) -> None:
        super().__init__(f"lease {state.scope!r} is held by {state.holder} "
                         f"({state.remaining:.0f} s left) after waiting {waited:.0f} s")
        self.state = state


class LeaseLost(Exception):
    """We no longer hold the lease (it ran out and another run took it)."""


def holder_id(*parts: object) -> str:
    """A holder name: readable parts (pipeline, run, try) and a random suffix, so two
    processes that claim for the same run (a zombie and its retry) are told apart."""
    text = ".".join(re.sub(r"[^A-Za-z0-9_:+.-]+", "_", str(p)) for p in parts if p != "")
    return clean(f"{text[-110:]}~{secrets.token_hex(3)}")


class Lease:
    def __init__(self, desk: ServiceDesk, scope: str, holder: str, *,
                 ttl: float = DEFAULT_TTL, wait: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.desk = desk
        self.scope = scope
        self.holder = clean(holder)
        self.ttl = ttl
        self.wait = ttl * 1.5 if wait is None else wait  # long enough for a dead holder's
        self.clock = clock  # claim to run out while we wait
        self.sleep = sleep
        self.renewed: float | None = None  # our clock when the desk last confirmed us

    @property
    def held(self) -> bool:
        return self.renewed is not None

    def acquire(self) -> None:
        start = self.clock()
        pause = 0.5
        while True:
            asked = self.clock()
            state = self.desk.claim_lease(self.scope, self.holder, self.ttl)
            if state.held_by(self.holder):
                self.renewed = asked
                waited = asked - start
                if waited > 1:
                    log.info("lease %s acquired after waiting %.1f s", self.scope, waited)
                return
            waited = self.clock() - start
            if waited >= self.wait:
                raise LeaseBusy(state, waited)
            log.info("lease %s held by %s (%.0f s left); waiting", self.scope, state.holder,
                     state.remaining)
            self.sleep(min(pause, max(0.2, state.remaining + 0.2), self.wait - waited))
            pause = min(pause * 2, 5.0)

    def keep(self) -> None:
        """Call before each unit of work: renews when due, raises ``LeaseLost`` if gone."""
        if self.renewed is None:
            raise LeaseLost(f"lease {self.scope!r} is not held")
        age = self.clock() - self.renewed
        if age < self.ttl / 3:
            return
        if age >= self.ttl * 0.9:
            self.renewed = None
            raise LeaseLost(f"lease {self.scope!r} not renewed for {age:.0f} s of its "
                            f"{self.ttl:.0f} s: another run may hold it now")
        asked = self.clock()
        state = self.desk.claim_lease(self.scope, self.holder, self.ttl)
        if not state.held_by(self.holder):
            self.renewed = None
            raise LeaseLost(f"lease {self.scope!r} was taken by {state.holder}")
        self.renewed = asked

    def release(self) -> None:
        if self.renewed is None:
            return
        self.renewed = None
        try:
            self.desk.release_lease(self.scope, self.holder)
        except Exception as exc:  # noqa: BLE001 - it runs out by itself; say so and go on
            log.warning("lease %s not released (%s); it runs out within %.0f s", self.scope,
                        exc, self.ttl)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
