"""incident-ops in the Airflow UI: the plan pages, served by the API server.

The app lives in the package (``incident_ops.airflow.plan_pages``); this file only registers
it, so a deployment that mounts ``plugins/`` (the demo, docker compose) gets it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from incident_ops.airflow.plan_pages import URL_PREFIX, create_app


class IncidentOpsPlugin(AirflowPlugin):
    name = "incident_ops"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX,
                     "name": "incident-ops plan pages"}]
