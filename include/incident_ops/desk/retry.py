"""Retrying a transient HTTP failure: one backoff policy and one reading of ``Retry-After``.

Both HTTP clients of the project use it: the desk's (``desk.rt.client``) and the SMS
gateway hook's (``airflow.provider.sms_hook``). Each keeps its own loop, because what may be
repeated differs (a desk POST that may have been applied is not repeated; an SMS carries an
idempotency key and is), but how long to wait and how often to try is decided here.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries, the first included
    backoff: float = 0.5  # seconds; doubled per retry
    backoff_cap: float = 8.0
    retry_after_cap: float = 30.0  # never wait longer than this on a server's say-so
    jitter: bool = True  # full jitter: many clients retrying do not come back at once

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0: the first retry); a server's
        ``retry_after`` wins, up to ``retry_after_cap``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        ceiling = min(self.backoff_cap, self.backoff * (2 ** retry))
        return random.uniform(0, ceiling) if self.jitter else ceiling


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
