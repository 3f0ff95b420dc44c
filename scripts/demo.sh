#!/usr/bin/env bash
# make demo / make stop: the embedded desk with sample data, a mail catcher, Airflow standalone
# with the project's DAGs. Everything runs on 127.0.0.1, in its own process group, with its
# state under .run/ and .desk/ (both git-ignored).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
RUN=$ROOT/.run
# `airflow standalone` starts its components as plain `airflow ...` from PATH: the venv's.
export PATH=$BIN:$PATH
export AIRFLOW_HOME=$RUN/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
# Simple auth manager (what standalone uses): the platform's admin, and one login per person
# of include/config/contacts.yaml (airflow_user; role "user"): each answers the emergency's
# questions of their role, nobody else's. Passwords (our own file): admin/admin, and each
# person's login as password (loopback demo only).
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
export AIRFLOW__API__HOST=127.0.0.1  # loopback only (the default listens on 0.0.0.0)
export AIRFLOW__API__PORT=8080
AIRFLOW_URL=http://127.0.0.1:8080
export INCIDENT_OPS_REPORTS_DIR=$ROOT/reports
export AIRFLOW_CONN_SMTP_DEFAULT='smtp://127.0.0.1:1025?disable_ssl=true&disable_tls=true&from_email=incident-ops%40ops.example.cn'
export AIRFLOW_CONN_SMS_DEFAULT='{"conn_type": "sms_gateway", "host": "http://127.0.0.1:8026/sms"}'
DESK_URL=http://127.0.0.1:${DESK_PORT:-8480}

wait_http() {  # url deadline-seconds what
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "error: $3 did not answer at $1 within $2 s" >&2; return 1; fi
    sleep 1
  done
}

start_bg() {  # name command...: start in its own process group, remember the pid
  local name=$1; shift
  if [[ -f $RUN/$name.pid ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0
  fi
  setsid "$@" > "$RUN/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

api() {  # METHOD PATH [JSON]: Airflow's REST API as admin (token from /auth/token)
  "$BIN/python" - "$@" <<'PY'
import json, sys, requests
method, path = sys.argv[1], sys.argv[2]
body = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
base = "http://127.0.0.1:8080"
token = requests.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"},
                      timeout=30).json()["access_token"]
resp = requests.request(method, base + path, json=body, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})
print(resp.text)
sys.exit(0 if resp.ok else 1)
PY
}

wait_dag() {  # dag deadline-seconds: until the dag-processor has parsed and stored it
  local deadline=$((SECONDS + $2))
  until api GET "/api/v2/dags/$1" > /dev/null 2>&1; do
    if (( SECONDS > deadline )); then echo "error: DAG $1 not loaded within $2 s" >&2; return 1; fi
    sleep 2
  done
}

failed() {
  echo "error: the demo did not start; see the logs in $RUN/ (airflow.log, mailcatcher.log)" \
    "and .desk/rt-server.log. Stop what did start with: make stop" >&2
  [[ -f $RUN/airflow.log ]] && tail -n 15 "$RUN/airflow.log" >&2
}

stop_bg() {  # name signal
  local name=$1 sig=${2:-TERM} pid
  [[ -f $RUN/$name.pid ]] || return 0
  pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" -- -"$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- -"$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
  echo "stopped $name"
}

start() {
  trap failed ERR
  mkdir -p "$RUN" "$AIRFLOW_HOME"
  echo "== desk: Request Tracker 5 on $DESK_URL"
  "$BIN/python" -m incident_ops.embedded_desk provision
  "$BIN/python" -m incident_ops.embedded_desk start
  seeded=$("$BIN/python" -m incident_ops.embedded_desk seed --count "${DEMO_TICKETS:-2000}")
  echo "$seeded"
  echo "== mail catcher: SMTP 127.0.0.1:1025, inbox http://127.0.0.1:8026/"
  start_bg mailcatcher "$BIN/python" scripts/mailcatcher.py --dir "$RUN/outbox"
  echo "== Airflow standalone on http://127.0.0.1:8080 (first start ~1 min)"
  people=$("$BIN/python" -c 'from incident_ops.config import load_contacts
print(" ".join(p.airflow_user for p in load_contacts().people.values() if p.airflow_user))')
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin$(printf ',%s:user' $people)"
  "$BIN/python" -c 'import json, sys; print(json.dumps({"admin": "admin", **{p: p for p in sys.argv[1:]}}))' \
    $people > "$AIRFLOW_HOME/passwords.json"
  "$BIN/airflow" db migrate > "$RUN/airflow-migrate.log" 2>&1
  "$BIN/airflow" pools set servicedesk 4 "Calls to the service desk" > /dev/null
  if [[ $seeded == *'"status": "seeded"'* ]]; then
    # A new desk: how far the pipelines read the previous one means nothing for it.
    for variable in incident_closure_watermark incident_queue_monitor_watermark; do
      "$BIN/airflow" variables delete "$variable" > /dev/null 2>&1 || true
    done
  fi
  "$BIN/airflow" connections delete servicedesk_default > /dev/null 2>&1 || true
  "$BIN/airflow" connections add servicedesk_default --conn-json \
    "{\"conn_type\": \"servicedesk\", \"host\": \"$DESK_URL\", \"login\": \"root\", \"password\": \"password\", \"extra\": {\"backend\": \"rt5\"}}" > /dev/null
  start_bg airflow "$BIN/airflow" standalone
  wait_http "$AIRFLOW_URL/api/v2/monitor/health" 180 "Airflow"
  wait_dag incident_closure 180
  # New DAGs start paused: unpause the closure DAG and run it once now.
  api PATCH /api/v2/dags/incident_closure '{"is_paused": false}' > /dev/null
  api POST /api/v2/dags/incident_closure/dagRuns '{"logical_date": null}' > /dev/null
  trap - ERR
  cat <<MSG

Demo running.
  Airflow UI    http://127.0.0.1:8080   user admin / admin; the people of contacts.yaml
                answer the emergency's questions, each with their login as password
                (liu.yang, chen.jing, zhao.lei: team leads; zheng.gang: leader;
                sun.min: incident manager)
                DAGs: incident_closure unpaused (every 10 min; a run started now), the
                others paused: trigger them from the UI (dry_run: decide and report only)
  Desk (RT 5)   $DESK_URL   user root / password   (queues: Incidents, Problems, ...)
  Mailbox       http://127.0.0.1:8026/  every mail and SMS the pipelines sent
  Plan pages    $ROOT/reports/incident_closure/<date>/<run>.html
Stop everything with: make stop
MSG
}

stop() {
  stop_bg airflow INT
  stop_bg mailcatcher TERM
  [[ -x $BIN/python ]] && "$BIN/python" -m incident_ops.embedded_desk stop || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
