"""The one engine that carries out every pipeline's plan: apply, leases, outbox, watermark."""

from incident_ops.engine.applier import ActionOutcome, Applied, Applier, Notifier, audit_fields
from incident_ops.engine.lease import Lease, LeaseBusy, LeaseLost, LeaseUnreachable, holder_id
from incident_ops.engine.outbox import MemoryOutbox, Outbox, Pending

__all__ = ["ActionOutcome", "Applied", "Applier", "Lease", "LeaseBusy", "LeaseLost",
           "LeaseUnreachable", "MemoryOutbox", "Notifier", "Outbox", "Pending", "audit_fields",
           "holder_id"]
