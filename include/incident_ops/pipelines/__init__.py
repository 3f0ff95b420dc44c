"""Pipeline steps that sit between the desk and the pure policy: fetch, apply glue, report.

Nothing here imports Airflow: a DAG task calls one function of this package, so every step
can be run and tested without a scheduler.
"""
