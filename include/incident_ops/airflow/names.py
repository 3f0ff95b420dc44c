"""Names the Airflow layer shares: connection ids, the plugin's URL prefix, XCom keys.

A leaf: it imports nothing from the package, so every wing (tasks, emergency, web, the
composition root) may take a name from here without importing another wing.
"""

from __future__ import annotations

import os
from urllib.parse import quote

DESK_CONN = "servicedesk_default"  # the desk (``provider.desk_hook``)
SMTP_CONN = "smtp_default"
SMS_CONN = "sms_default"  # the SMS gateway (``provider.sms_hook``)
ANSWER_CONN = "incident_ops_answers"  # the secret of the requester's answer links
METADATA_DB_CONN = "incident_ops_metadata_db"  # retention: the maintenance DAG's db clean

URL_PREFIX = "/incident-ops"  # where the API server mounts the plugin's app (``web``)

PLAN_PAGE_XCOM = "plan_page"  # the report task's plan page URL (its extra link)
APPLIED_XCOM = "applied"  # apply's record of what happened
FAILURE_XCOM = "failure"  # why a task failed, for the on-call alert (``alerting``)


def airflow_url() -> str:
    """Where ops reach Airflow, for the ready-made emergency commands in urgent mails."""
    return os.environ.get("INCIDENT_OPS_AIRFLOW_URL", "http://127.0.0.1:8080").rstrip("/")


def page_url(key: str | None) -> str | None:
    """The URL under which the API server serves the artefact at ``key`` (a plan page:
    ``<pipeline>/<day>/<name>``), or None for no key."""
    if not key:
        return None
    return f"{airflow_url()}{URL_PREFIX}/plans/" + "/".join(quote(p) for p in key.split("/"))
