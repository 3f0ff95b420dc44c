"""The Airflow plugin of incident-ops: the plan pages, the requester's answer pages (100.7.2
by link), the "Incident ops" view in the navigation, and the check that refuses a second
emergency for an incident whose emergency is running (form and REST).

Registered by the package's ``airflow.plugins`` entry point (pyproject.toml), so
``pip install incident-ops`` is enough: no file to copy into a plugins folder.
``plugins/incident_ops_plugin.py`` re-exports it for a deployment that mounts ``plugins/``
without the package's metadata (see :func:`registered_by_entry_point`).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow.plugins_manager import AirflowPlugin

from incident_ops.airflow.names import URL_PREFIX
from incident_ops.airflow.web.ops_view import VIEW_PATH
from incident_ops.airflow.web.plan_pages import create_app
from incident_ops.airflow.web.trigger_guard import OneEmergencyPerIncident

PLUGIN_NAME = "incident_ops"
ENTRY_POINT = "incident_ops.airflow.web.plugin:IncidentOpsPlugin"


class IncidentOpsPlugin(AirflowPlugin):
    name = PLUGIN_NAME
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX,
                     "name": "incident-ops pages"}]
    # The view, embedded in the UI under Browse (the page itself checks the reader's login).
    external_views = [{"name": "Incident ops", "href": f"{URL_PREFIX}{VIEW_PATH}/",
                       "url_route": "incident-ops", "destination": "nav",
                       "category": "browse"}]
    fastapi_root_middlewares = [{"middleware": OneEmergencyPerIncident,
                                 "name": "one emergency per incident"}]


def registered_by_entry_point() -> bool:
    """Whether an installed distribution already registers this plugin.

    Airflow (3.3, plugins_manager) loads the plugins folder first, then the entry points, and
    keeps the first plugin of a name: the second is skipped *and* reported as a plugin import
    error. The plugins-folder copy therefore steps aside when the entry point is there.
    """
    return any(ep.value == ENTRY_POINT for ep in entry_points(group="airflow.plugins"))
