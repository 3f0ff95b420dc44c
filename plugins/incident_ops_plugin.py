"""incident-ops in the Airflow UI, for a deployment that mounts ``plugins/`` with the package
installed without its entry points (e.g. only on ``PYTHONPATH``).

The plugin lives in the package (``incident_ops.airflow.web.plugin``) and an installed
package registers it through its ``airflow.plugins`` entry point; this file then exports
nothing, so Airflow does not see the same plugin twice (it would report the second as an
import error).
"""

from __future__ import annotations

from incident_ops.airflow.web.plugin import registered_by_entry_point

if not registered_by_entry_point():
    from incident_ops.airflow.web.plugin import IncidentOpsPlugin

    __all__ = ["IncidentOpsPlugin"]
