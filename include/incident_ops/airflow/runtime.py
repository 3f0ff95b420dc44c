"""What every pipeline task needs from Airflow: the run's identity and time, the desk, senders.

Task code calls these instead of reaching into the context itself, so a DAG file stays
wiring and the policy gets ``now`` from the run (its data interval), never from the clock:
a run replayed over a past period decides as it would have then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from incident_ops.airflow.names import SMS_CONN, SMTP_CONN
from incident_ops.notify.messages import Email, Sms

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    now: datetime


def run_info(context: Any) -> RunInfo:
    """The run's id and its reference time (end of its data interval, else when it ran)."""
    dag_run = context["dag_run"]
    when = context.get("data_interval_end") or getattr(dag_run, "run_after", None) \
        or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # A plain datetime, not Airflow's pendulum one: pendulum drops a stdlib tzinfo when a
    # timedelta is added, and the policy adds timedeltas to ``now`` everywhere.
    now = datetime.fromtimestamp(when.timestamp(), tz=UTC)
    return RunInfo(dag_id=dag_run.dag_id, run_id=dag_run.run_id, now=now)


class AirflowNotifier:
    """Sends through the Airflow connections ``smtp_conn_id`` and ``sms_conn_id``."""

    def __init__(self, smtp_conn_id: str = SMTP_CONN, sms_conn_id: str = SMS_CONN):
        self.smtp_conn_id = smtp_conn_id
        self.sms_conn_id = sms_conn_id

    def send_email(self, email: Email) -> None:
        from incident_ops.airflow.provider.senders import send_email

        send_email(email, conn_id=self.smtp_conn_id)
        log.info("e-mail sent to %d recipient(s): %s", len(email.to) + len(email.cc),
                 email.subject)

    def send_sms(self, sms: Sms) -> None:
        from incident_ops.airflow.provider.senders import send_sms

        send_sms(sms, conn_id=self.sms_conn_id)
        log.info("SMS sent to %d number(s)", len(sms.to))
