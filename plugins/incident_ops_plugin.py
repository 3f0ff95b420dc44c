"""incident-ops in the Airflow UI, served by the API server: the plan pages, the requester's
answer pages (100.7.2 by link), the "Incident ops" view in the navigation, and the check
that refuses a second emergency for an incident whose emergency is running (form and REST).

The app lives in the package (``incident_ops.airflow.web.plan_pages.create_app``); this file only
registers it, so a deployment that mounts ``plugins/`` (the demo, docker compose) gets it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from incident_ops.airflow.names import URL_PREFIX
from incident_ops.airflow.web.ops_view import VIEW_PATH
from incident_ops.airflow.web.plan_pages import create_app
from incident_ops.airflow.web.trigger_guard import OneEmergencyPerIncident


class IncidentOpsPlugin(AirflowPlugin):
    name = "incident_ops"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX,
                     "name": "incident-ops pages"}]
    # The view, embedded in the UI under Browse (the page itself checks the reader's login).
    external_views = [{"name": "Incident ops", "href": f"{URL_PREFIX}{VIEW_PATH}/",
                       "url_route": "incident-ops", "destination": "nav",
                       "category": "browse"}]
    fastapi_root_middlewares = [{"middleware": OneEmergencyPerIncident,
                                 "name": "one emergency per incident"}]
