"""The embedded desk: a private Request Tracker 5 on loopback for the demo and the tests.

``python -m incident_ops.embedded_desk install|provision|start|stop|status|seed``; the same
operations from Python through ``EmbeddedDesk``.
"""

from incident_ops.embedded_desk.desk import (
    DEFAULT_PORT,
    ROOT_PASSWORD,
    ROOT_USER,
    DeskStatus,
    EmbeddedDesk,
    EmbeddedDeskError,
)
from incident_ops.embedded_desk.rt_server import port_in_use

__all__ = ["DEFAULT_PORT", "ROOT_PASSWORD", "ROOT_USER", "EmbeddedDeskError", "DeskStatus",
           "EmbeddedDesk", "port_in_use"]
