"""Holding a desk lease while applying: one apply per scope at a time, however runs overlap.

The desk keeps the lease (``ServiceDesk.claim_lease``: a log the desk orders, see
``desk/lease_log.py``); this is the holder's side: claim it (waiting while another run holds
it), renew it before it can run out, notice when it was lost, give it back.

Renewal uses the local monotonic clock: a holder that renewed less than ``ttl / 3`` ago
cannot have lost the lease (nobody may take it before ``ttl`` has passed by the desk's
clock), so checking before each desk call costs nothing most of the time. A holder that
could not renew for most of its ``ttl`` (a desk outage, a frozen process) stops acting: its
lease may be someone else's by now.

``Fenced`` is the desk as a holder sees it: every call keeps the lease first and must be
over before the lease could run out (``desk.port.deadline``: the adapter cuts its timeouts
and retries to it), so a slow write cannot outlive its holder's lease on our side.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from incident_ops.desk.lease_log import clean
from incident_ops.desk.port import (
    DeskAuthError,
    DeskError,
    LeaseState,
    ServiceDesk,
    TransientDeskError,
    deadline,
)

log = logging.getLogger(__name__)

DEFAULT_TTL = 120.0
SAFE_PART = 0.9  # of the ttl, by our clock, a holder acts within after a confirmed claim


class LeaseBusy(Exception):
    """Another run held the lease for all of our wait."""

    def __init__(self, state: LeaseState, waited: float) -> None:
        super().__init__(f"lease {state.scope!r} is held by {state.holder} "
                         f"({state.remaining:.0f} s left) after waiting {waited:.0f} s")
        self.state = state


class LeaseLost(Exception):
    """We no longer hold the lease (it ran out and another run took it)."""


class LeaseUnreachable(TransientDeskError):
    """The desk did not answer our renewals until the lease could be another's: the holder
    stops as for ``LeaseLost``, but this is a desk outage, not another run's turn, so it is
    raised as one (the task's attempt fails; Airflow's retry or the next run does the rest,
    and on-call hears of a run that stays red)."""


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
        self.unanswered: DeskError | None = None  # why the last renewal failed, if it did

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
        if age >= self.ttl * SAFE_PART:
            self.renewed = None
            if self.unanswered is not None:
                raise LeaseUnreachable(
                    f"lease {self.scope!r} not renewed for {age:.0f} s of its {self.ttl:.0f} s:"
                    f" the desk did not answer ({self.unanswered}); this attempt stops, its "
                    "retry or the next run does the rest")
            raise LeaseLost(f"lease {self.scope!r} not renewed for {age:.0f} s of its "
                            f"{self.ttl:.0f} s: another run may hold it now")
        asked = self.clock()
        try:
            state = self.desk.claim_lease(self.scope, self.holder, self.ttl)
        except DeskAuthError:
            raise
        except DeskError as exc:
            # The desk is away: the lease is still ours until SAFE_PART of its ttl; the
            # next call tries to renew again, and past that the holder stops (above).
            self.unanswered = exc
            log.warning("lease %s not renewed (%s); %.0f s left to act", self.scope, exc,
                        self.remaining())
            return
        self.unanswered = None
        if not state.held_by(self.holder):
            self.renewed = None
            raise LeaseLost(f"lease {self.scope!r} was taken by {state.holder}")
        self.renewed = asked

    def remaining(self) -> float:
        """Seconds left to act before the lease could be another's (0 when not held)."""
        if self.renewed is None:
            return 0.0
        return max(0.0, self.renewed + self.ttl * SAFE_PART - self.clock())

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


LEASE_CALLS = ("claim_lease", "release_lease")


class Fenced:
    """A desk whose every call is made under ``lease``: kept (renewed when due, ``LeaseLost``
    when gone) before the call, and bounded by the time the lease has left.

    ``tightest`` is the measured fencing margin: the least time any call of this holder had
    left on its lease when it returned (negative would mean a call outlived the lease)."""

    def __init__(self, desk: ServiceDesk, lease: Lease,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._desk = desk
        self._lease = lease
        self._monotonic = monotonic
        self.tightest: float | None = None
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._desk, name)
        if name in LEASE_CALLS or name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._lease.keep()
            ends = self._monotonic() + self._lease.remaining()
            with deadline(ends):
                result = attr(*args, **kwargs)
                if isinstance(result, Iterator):  # a lazy search: read it within the bound
                    result = iter(list(result))
            margin = ends - self._monotonic()
            self.calls += 1
            self.tightest = margin if self.tightest is None else min(self.tightest, margin)
            return result

        return call
