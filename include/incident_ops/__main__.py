"""``python -m incident_ops check-config [FOLDER]``: check the policy files before a deploy.
``python -m incident_ops dags-folder``: print where the DAG files are (point Airflow's
``[core] dags_folder`` or a DAG bundle's ``path`` there).

Prints every problem of the config folder (``$INCIDENT_OPS_CONFIG_DIR`` or the one shipped
with the package) with its file, key and line, and exits 1; prints what it checked and
exits 0 when all is well. CI and the DAGs' first tasks run the same check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m incident_ops")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate the YAML policy files")
    check.add_argument("folder", nargs="?", type=Path,
                       help="config folder (default: $INCIDENT_OPS_CONFIG_DIR or the shipped one)")
    sub.add_parser("dags-folder", help="print the folder of the DAG files")
    args = parser.parse_args(argv)

    from incident_ops.config import config_dir, dags_folder

    if args.command == "dags-folder":
        print(dags_folder())
        return 0
    from incident_ops.config_check import check_config

    folder = args.folder or config_dir()
    problems = check_config(args.folder)
    if problems:
        print(f"{folder}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    plans = sorted(p.stem for p in (folder / "plans").glob("*.yaml"))
    print(f"{folder}: vocabulary, contacts, closure, sla, reports and {len(plans)} "
          f"contingency plan(s) ({', '.join(plans)}) are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
