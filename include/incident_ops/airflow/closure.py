"""The incident_closure DAG's plan task: fetch what changed, decide (100.6-100.7)."""

from __future__ import annotations

from typing import Any

from incident_ops.airflow.pipeline import fetch_clock, planned, read_watermark
from incident_ops.airflow.runtime import run_info

WATERMARK_VARIABLE = "incident_closure_watermark"


def plan_closure(context: Any, *, conn_id: str = "servicedesk_default") -> dict[str, Any]:
    from incident_ops.airflow.hooks import ServiceDeskHook
    from incident_ops.config import load_contacts, load_vocabulary, load_yaml
    from incident_ops.pipelines.closure import fetch_closure_batch
    from incident_ops.policy.closure import ClosurePolicy, decide_closure

    info = run_info(context)
    since = read_watermark(WATERMARK_VARIABLE)
    policy = ClosurePolicy.from_dict(load_yaml("closure.yaml"))
    started = fetch_clock()
    with ServiceDeskHook(conn_id) as hook:
        batch = fetch_closure_batch(hook.get_desk(), since,
                                    parallel=policy.read_parallelism)
    plan = decide_closure(batch.resolved, batch.related, policy, load_vocabulary(),
                          load_contacts(), info.now, info.run_id)
    return planned(plan, batch.tickets.values(), now=info.now, read=batch.resolved,
                   watermark_variable=WATERMARK_VARIABLE, watermark=since, fetch_started=started,
                   bulk_size=policy.bulk_size)
