"""Command line of the embedded desk: ``python -m incident_ops.embedded_desk COMMAND``.

Commands: ``install``, ``provision [--force]``,
``start [--host ADDR] [--port N] [--workers W]``, ``stop``, ``status [--json]``,
``seed [--count 2000] [--seed 42] [--force]``.
Environment: ``DESK_WORKDIR`` (default ``<repo>/.desk``), ``DESK_HOST`` (127.0.0.1; 0.0.0.0
in a container), ``DESK_PORT`` (8480), ``DESK_WORKERS`` (4). Exit status 0 on success (also
when there was nothing to do), 1 on a desk error with the reason on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time

from incident_ops.embedded_desk.desk import EmbeddedDesk, EmbeddedDeskError
from incident_ops.reference import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m incident_ops.embedded_desk",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="working directory (env DESK_WORKDIR)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install RT 5 from Debian packages if missing")
    p = sub.add_parser("provision", help="create the desk database with the schema")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p = sub.add_parser("start", help="start rt-server and wait until it answers")
    p.add_argument("--host", help="address to listen on (env DESK_HOST, 127.0.0.1; "
                   "0.0.0.0 only inside a container or behind a firewall)")
    p.add_argument("--port", type=int, help="port to listen on (env DESK_PORT, 8480)")
    p.add_argument("--workers", type=int, help="rt-server workers (env DESK_WORKERS, 4)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for RT")
    p = sub.add_parser("stop", help="stop rt-server (the whole process group)")
    p = sub.add_parser("status", help="running or not, URL, ticket count")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("seed", help="load a deterministic, realistic ticket mix")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true",
                   help="seed again even if this desk was already seeded")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    desk = EmbeddedDesk(args.workdir, port=getattr(args, "port", None),
                        workers=getattr(args, "workers", None),
                        host=getattr(args, "host", None))
    try:
        if args.command == "install":
            desk.install()
        elif args.command == "provision":
            t0 = time.monotonic()
            if desk.provision(force=args.force):
                print(f"provisioned {desk.db_path} in {time.monotonic() - t0:.1f} s")
            else:
                print(f"already provisioned: {desk.db_path}")
        elif args.command == "start":
            t0 = time.monotonic()
            started = desk.start(deadline_s=args.timeout)
            state = "started" if started else "already running"
            print(f"desk {state} at {desk.url} ({time.monotonic() - t0:.1f} s)")
            print(f"  REST2: {desk.rest_url}   user: {desk.user}   password: {desk.password}")
            print("  staff users: helpdesk, zhang.wei, liu.yang, ... password: password")
            print(f"  workdir: {desk.workdir}   log: {desk.server_log}")
        elif args.command == "stop":
            print("desk stopped" if desk.stop() else "desk was not running")
        elif args.command == "status":
            status = desk.status()
            if args.json:
                print(json.dumps(dataclasses.asdict(status), ensure_ascii=False, indent=1))
            else:
                state = (f"running (pid {status.pid}, {status.workers} workers, "
                         f"{status.memory_mb} MB PSS)") if status.running else "not running"
                print(f"desk {state}: {status.url}")
                stale = status.provisioned and not status.schema_current
                print(f"  workdir {desk.workdir}; provisioned: {status.provisioned}"
                      + (" (SCHEMA CHANGED since: stop, provision, start)" if stale else ""))
                print(f"  tickets: {status.tickets if status.tickets is not None else '-'}"
                      f"{'; seeded ' + json.dumps(status.seeded) if status.seeded else ''}")
        elif args.command == "seed":
            result = desk.seed(count=args.count, seed=args.seed, force=args.force)
            print(json.dumps(result, ensure_ascii=False))
    except (EmbeddedDeskError, ConfigError) as exc:
        print(f"embedded desk: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
