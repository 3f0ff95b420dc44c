#!/usr/bin/env bash
# Entry point of the sandbox desk container: provision (once per volume), start rt-server on
# $DESK_HOST:$DESK_PORT, seed the sample tickets (once per volume), then stay in the
# foreground until rt-server exits or the container is stopped (SIGTERM: the whole
# rt-server process group is stopped through the same CLI).
set -euo pipefail
desk() { python -m incident_ops.embedded_desk "$@"; }

stop() {
  echo "desk: stopping"
  desk stop || true
  exit 0
}
trap stop TERM INT

mkdir -p "$DESK_WORKDIR"
desk provision
desk start --host "${DESK_HOST:-0.0.0.0}" --port "${DESK_PORT:-8480}" \
  --workers "${DESK_WORKERS:-4}" --timeout 120
if [[ "${DESK_SEED_COUNT:-0}" -gt 0 ]]; then
  desk seed --count "$DESK_SEED_COUNT"
fi
echo "desk: ready on ${DESK_HOST:-0.0.0.0}:${DESK_PORT:-8480} (user root, password: RT's demo default)"

# rt-server runs in its own session (the CLI starts it so); follow it by its pid file.
pid=$(python -c 'import json, os, sys; print(json.load(open(os.path.join(os.environ["DESK_WORKDIR"], "rt-server.pid")))["pid"])')
while kill -0 "$pid" 2>/dev/null; do
  sleep 5 &
  wait $! || true  # a trapped signal interrupts the wait at once
done
echo "desk: rt-server (pid $pid) exited; see $DESK_WORKDIR/rt-server.log" >&2
tail -n 30 "$DESK_WORKDIR/rt-server.log" >&2 || true
exit 1
