"""Our Airflow provider: the connection types and their hooks, the senders, the auth managers.

Airflow finds ``get_provider_info`` here through the ``apache_airflow_provider`` entry point
in ``pyproject.toml``; every ``airflow`` CLI call imports this package, so it hands on only
``info`` (standard library only). Import the hooks from their modules.
"""

from incident_ops.airflow.provider.info import get_provider_info

__all__ = ["get_provider_info"]
