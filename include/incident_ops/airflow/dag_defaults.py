"""Defaults every project DAG shares, read from the environment only (cheap at parse time).

``INCIDENT_OPS_RETRIES`` (default 2) and ``INCIDENT_OPS_RETRY_DELAY_SECONDS`` (default 60)
let a deployment tune how long a desk outage is ridden out; the test suite shortens the
delay so a failing task fails fast instead of waiting minutes.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

DESK_POOL = "servicedesk"  # every task that calls the desk runs in this pool


def default_args(retry_seconds: float = 60) -> dict[str, Any]:
    delay = float(os.environ.get("INCIDENT_OPS_RETRY_DELAY_SECONDS", retry_seconds))
    return {
        "owner": "incident-ops",
        "retries": int(os.environ.get("INCIDENT_OPS_RETRIES", "2")),
        "retry_delay": timedelta(seconds=delay),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=max(delay, 1) * 10),
    }


def timezone() -> str:
    return os.environ.get("INCIDENT_OPS_TIMEZONE", "Asia/Shanghai")
