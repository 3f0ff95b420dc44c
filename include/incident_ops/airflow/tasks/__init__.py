"""Task bodies of the scheduled pipelines: plan, apply, report, snapshot, reports."""
