"""The service-desk port and its adapters."""

from incident_ops.desk.port import (
    BadQuery,
    DeskAuthError,
    DeskError,
    RejectedChange,
    ServiceDesk,
    StaleTicket,
    TicketNotFound,
    TicketQuery,
    TransientDeskError,
)

__all__ = [
    "BadQuery",
    "DeskAuthError",
    "DeskError",
    "RejectedChange",
    "ServiceDesk",
    "StaleTicket",
    "TicketNotFound",
    "TicketQuery",
    "TransientDeskError",
]
