"""The Request Tracker 5 adapter: ``RequestTrackerDesk`` over REST2, and its HTTP client."""

from incident_ops.desk.rt.adapter import RequestTrackerDesk
from incident_ops.desk.rt.client import AmbiguousWrite, RetryPolicy, RTClient

__all__ = ["AmbiguousWrite", "RTClient", "RequestTrackerDesk", "RetryPolicy"]
