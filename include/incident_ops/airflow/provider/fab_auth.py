"""FAB, Airflow's production auth manager, with questions assigned by login (``auth``).

Set ``AIRFLOW__CORE__AUTH_MANAGER=incident_ops.airflow.provider.fab_auth.PeopleFabAuthManager``
(docker-compose.yml's default). Everything else is FAB's: users and roles in the metadata
DB (``airflow users create``), or LDAP/OAuth configured in ``webserver_config.py``.
Needs the FAB provider (``apache-airflow-providers-fab``, in the official image).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

from incident_ops.airflow.provider.auth import is_assignee


class PeopleFabAuthManager(FabAuthManager):
    def is_authorized_hitl_task(self, *, assigned_users: Collection[str], user: Any) -> bool:
        return is_assignee(assigned_users, user)
