"""DAG tests: integrity (DagBag) and runs through ``dag.test()``."""
